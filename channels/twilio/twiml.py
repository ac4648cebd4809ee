"""The TwiML documents the Twilio channel answers with, and the few phrases Twilio itself speaks.

``<Say>`` and ``<Gather>`` speech recognition use the persona's language as a
BCP-47 tag (``en-US``, ``ru-RU``). Everything else the caller hears on a
Media Streams call is the secretary's own voice.
"""

from __future__ import annotations

from typing import Final

from twilio.twiml.voice_response import VoiceResponse

LANGUAGE_TAGS: Final = {"en": "en-US", "ru": "ru-RU"}

VOICEMAIL: Final = {
    "en": "Sorry, I cannot answer that right now. Please leave your name, your number and your message after the tone.",
    "ru": "Извините, сейчас я не могу ответить. Пожалуйста, после сигнала назовите своё имя, номер телефона "
          "и оставьте сообщение.",
}
NOT_HEARD: Final = {
    "en": "I did not hear you. Please leave your name, your number and your message after the tone.",
    "ru": "Вас не слышно. Пожалуйста, после сигнала назовите своё имя, номер телефона и оставьте сообщение.",
}
LINE_DOWN: Final = {
    "en": "Sorry, the secretary cannot take your call right now. Please leave your name, your number and "
          "your message after the tone.",
    "ru": "Извините, секретарь сейчас не может ответить. Пожалуйста, после сигнала назовите своё имя, номер "
          "телефона и оставьте сообщение.",
}
VOICEMAIL_MAX_S: Final = 120


def language_tag(language: str) -> str:
    return LANGUAGE_TAGS.get(language, "en-US")


def phrase(table: dict[str, str], language: str) -> str:
    return table.get(language, table["en"])


def stream_twiml(stream_url: str, action_url: str, parameters: dict[str, str]) -> str:
    """``<Connect action=...><Stream url=...>`` with ``<Parameter>``s (they come back in ``start.customParameters``).

    When the stream ends Twilio requests ``action_url``, whose answer (hang up,
    or an apology and a voicemail when the secretary was not there) continues
    the call.
    """
    response = VoiceResponse()
    connect = response.connect(action=action_url, method="POST")
    stream = connect.stream(url=stream_url)
    for name, value in parameters.items():
        stream.parameter(name=name, value=value)
    return str(response.to_xml())


def gather_twiml(text: str, language: str, action_url: str) -> str:
    """Say ``text`` (the caller may talk over it) and send what the caller says next to ``action_url``."""
    response = VoiceResponse()
    gather = response.gather(
        input="speech", action=action_url, method="POST", language=language_tag(language), speech_timeout="auto",
        action_on_empty_result=True,
    )
    gather.say(text, language=language_tag(language))
    return str(response.to_xml())


def voicemail_twiml(text: str, language: str, action_url: str, goodbye: str) -> str:
    """An apology asking for a message, the tone, up to two minutes of recording sent to ``action_url``."""
    response = VoiceResponse()
    response.say(text, language=language_tag(language))
    response.record(max_length=VOICEMAIL_MAX_S, play_beep=True, action=action_url, method="POST")
    response.say(goodbye, language=language_tag(language))  # nothing was recorded: Twilio goes on here
    response.hangup()
    return str(response.to_xml())


def goodbye_twiml(text: str | None, language: str) -> str:
    response = VoiceResponse()
    if text:
        response.say(text, language=language_tag(language))
    response.hangup()
    return str(response.to_xml())
