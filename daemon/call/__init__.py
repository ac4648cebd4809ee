"""The live call: from the answered call's first audio frame to its record, with ears, dialogue and mouth.

``service.py`` (``CallService``) hears from the modem that a call was
answered and its PCM is up, opens the record, builds the line, the ears, the
mouth and the dialogue, and runs the ``CallFlow`` (``flow.py``) until the
hang-up; then it finishes the record and publishes ``ended``. Its
``CallAnnouncer`` (``announcer.py``) is the one writer of ``call/state`` and
``call/event``, for every call on every line. Calls that do
not come through the modem (the web page's test call, Twilio) arrive as a
``StreamLineSession`` (``stream_line.py``), through ``line_socket.py`` or the
web page, and run on the same flow.

A caller's 20 ms frame and the reply's way back, with the file for each step::

    drivers/sim7600/modem.py   CallAudioReady pushes the call's PcmSession -> service.py starts the flow
    drivers/sim7600/pcm_port.py (PcmSession.read_frame)        | call/stream_line.py (browser, Twilio)
      -> call/line.py          CallLine.caller_audio -> drivers/audio/capture.py: decode, caller track,
                               float32 at ENGINE_RATE (the engines' one format)
      -> call/listener.py      CallerListener: engines/vad (SpeechDetector) -> engines/stt (SttEngine)
      -> call/flow.py          CallFlow: barge-in, endpoint, fillers, DTMF, silence
      -> dialogue/             Dialogue.reply -> dialogue/reply_chunker.py (clauses)
      -> call/speaker.py       Speaker.say: engines/tts (TtsEngine) or voices/phrase_cache.py
      -> call/line.py          begin_reply / next_segment / play / end_reply / wait_played / cut
                               -> drivers/audio/playout.py LinePlayout (crossfade, 8 kHz, level) -> jitter buffer
      -> drivers/audio/playout.py FrameSender: the one 20 ms tick on a PacingClock (secretary track, encode)
      -> drivers/sim7600/pcm_port.py (PcmSession.write_frame)  | call/stream_line.py
    and utterances -> records/call_record.py; call/state and call/event -> call/announcer.py
"""
