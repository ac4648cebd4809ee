"""Text normalisation for speech: numbers, dates, times, phone numbers, money, abbreviations -> words.

``normalize(text, language)`` is the entry point (see ``normalizer``); the
rules live in ``english`` and ``russian``, the building blocks beside them.
"""

from engines.text_normalize.normalizer import SUPPORTED_LANGUAGES, normalize

__all__ = ["SUPPORTED_LANGUAGES", "normalize"]
