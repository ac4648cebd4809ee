"""The caller's spoken answers read into message fields: phone numbers, names, reasons, yes or no.

Pure, deterministic string work on speech-to-text results in English and Russian: whisper varies
case and punctuation, writes numbers as digits, words or a mix of both ("8 девятьсот 16",
"8,916,123-45-67"), writes hesitations ("э-э") and sometimes mis-hears, so the parsers are
tolerant and say ``None`` rather than guess when nothing fits. ``words.py`` holds what they
share (the languages, folding, tokens, fillers); ``numbers.py`` reads phone numbers and digits
said as words and knows the groups people dictate them in, ``names.py`` the caller's name,
``reasons.py`` what the call is about (cutting off the caller's self-introduction with
``names.py``), ``yes_no.py`` a confirmation, ``requests.py`` what the caller asks for ("что?",
"на этот номер", "не надо") and ``corrections.py`` a correction of one part of a value ("не 45,
а 46", "не Иван, а Илья"). None of them knows the message slots: the take-a-message policy
calls them and ``message_slots.py`` checks a callback number with ``numbers.py``::

    caller's words -> words.py -> numbers.py / names.py / reasons.py / yes_no.py / requests.py
                   -> corrections.py (on a value read back)
                   -> slot values for take_message_policy.py -> MessageSlots (message_slots.py)
"""
