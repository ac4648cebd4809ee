"""What stays after a call: its record on disk, the SQLite index, retention, callback requests.

``call_record.py`` writes one call's folder (both WAV tracks' names,
``transcript.json``, ``transcript.txt``) crash-safe as the call goes;
``call_index.py`` keeps one row per call in ``data_dir/secretary.db``;
``retention.py`` recovers records a crash left in progress, deletes old
ones and frees space by policy (old calls' audio first);
``recorder_service.py`` keeps a full disk from ending a call (recording is a
side job, refused writes are retried) and says so on
``services/recorder/state``; ``callback_requests.py`` takes the "call me back" requests channels
leave and publishes them for the owner::

    call/ -> CallRecord (utterances, end) -> transcript.json + CallIndex row -> retention
"""
