"""How each persona sounds: its synthesis request, its phrases kept ready, its cloned-voice samples.

``persona_voice.py`` turns a persona's voice settings into the TTS request
for a text and says which backends may speak it; ``phrase_cache.py`` keeps
the phrases said on every call (greeting, goodbye, prompts, fillers)
synthesized at line rate in memory and on disk; ``samples.py`` keeps the
reference recordings of a cloned (XTTS v2) voice the owner uploads::

    persona config -> PersonaVoice -> TTS engine -> SpeechCache (line-rate phrases) -> call/speaker
"""
