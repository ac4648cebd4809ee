"""What the secretary says: the scripted and the LLM dialogue, the message they fill, the chat service.

``interface.py`` is the shape both dialogues share (a reply is a stream of
text and cached phrases, plus the outcome). ``scripted_dialogue.py`` runs
the take-a-message policy (``take_message_policy.py``, its phrases and the
numbers it reads back in words in ``policy_speech.py``) when no LLM serves;
``llm_dialogue.py`` runs the persona's prompt and tools on the chat engine.
Both fill the same ``MessageSlots`` (``message_slots.py``; the spoken numbers,
names and reasons are read by ``spoken_fields/``). ``reply_chunker.py`` cuts
reply text into speakable clauses for both; ``call_summary.py`` writes the
owner's paragraph; ``chat_service.py`` serves ``cmd/chat`` with the same
personas::

    caller's words -> Dialogue.reply -> text deltas -> ReplyChunker -> clauses for call/speaker
                                     -> MessageSlots -> call_summary -> the ended event
"""
