"""Messages that are not questions: no words at all, acknowledgements, greetings.

Pure rules, Korean and English, on a message's plain text (after :mod:`bot.markup`, best on its
``bare`` text, without mentions):

- :func:`has_words`: a letter or a number somewhere (Unicode categories L* and N*), not counting
  emoji (``🔥``, Slack's ``:fire:`` codes, keycaps such as ``1️⃣``) or lone Hangul jamo
  (``ㅋㅋ``, ``ㅠㅠ``), which are expressions rather than words;
- :func:`classify`: a message made only of acknowledgement phrases ("thanks 👍", "ok",
  "got it, cheers", "고마워요", "네 알겠습니다"), greetings ("hi", "안녕하세요") and filler words
  ("so much", "정말"), or only of emoji, is chatter. Anything else, including an
  acknowledgement with a question ("thanks, but how do I reset my password?"), may be a
  question and is left to retrieval: a message with a question mark or with one word outside
  the phrase lists is never chatter.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

# Slack writes emoji as short codes (":fire:", ":+1:", ":wave::skin-tone-3:").
_SHORTCODE = re.compile(r":([a-z0-9_+'\-]{1,64}):(?::skin-tone-\d:)?")
_KEYCAP = re.compile("[0-9#*]\ufe0f?\u20e3")
# Hangul compatibility and half-width jamo: ㅋㅋ, ㅎㅎ, ㅠㅠ, ㅇㅇ are expressions, not words.
_LONE_JAMO = re.compile("[\u3131-\u318e\uffa0-\uffdc]")
_HANGUL = re.compile("[\u1100-\u11ff\u3131-\u318e\uac00-\ud7a3]")
_LATIN = re.compile("[A-Za-z]")
_APOSTROPHES = re.compile("['\u2018\u2019\u02bc]")
# Western emoticons, standing alone: ":)", ":D", ";-P", "xD", "<3", "^^", "T_T".
_EMOTICON = re.compile(
    r"(?<!\S)(?:[:;=8xX][-'^o]?[)(\]\[DPpO03/\\|*]+|<3+|</3|\^_*\^|[Tㅠㅜ]_+[Tㅠㅜ])(?=\s|$|[.,!~])",
    re.IGNORECASE,
)
_HAPPY_EMOTICON = re.compile(r"[)\]D3]$|^<3|^\^", re.IGNORECASE)
_SAD_EMOTICON = re.compile(r"[(\[]$|^</3|_")
# Chat abbreviations written in initial consonants, read as the words they stand for:
# "ㄱㅅ"/"ㄳ" 감사, "ㅇㅋ" 오케이, "ㅇㅇ" 응. Laughter (ㅋㅋ, ㅎㅎ) and tears (ㅠㅠ) stay jamo.
_JAMO_RUN = re.compile("[\u3131-\u318e]+")
_JAMO_WORDS = {
    "ㄱㅅㅎㄴㄷ": "감사합니다", "ㄱㅅㅇ": "감사", "ㄱㅅㄹ": "감사", "ㄱㅅ": "감사", "ㄳ": "감사",
    "ㄱㅁㅇ": "고마워", "ㅇㅋㄷㅋ": "오케이", "ㅇㅋ": "오케이", "ㅇㅇ": "응", "ㅇㅎ": "아하",
    "ㅇㅈ": "인정",
}  # fmt: skip
_JAMO_ABBREVIATIONS = re.compile(
    "(?:" + "|".join(sorted(_JAMO_WORDS, key=len, reverse=True)) + ")+"
)
_JAMO_ABBREVIATION = re.compile("|".join(sorted(_JAMO_WORDS, key=len, reverse=True)))
_QUESTION_MARKS = ("?", "？", "¿", "؟")


class ChatterKind(StrEnum):
    ACKNOWLEDGEMENT = "acknowledgement"  # thanks, ok, got it, 👍: the answer landed
    DISAPPROVAL = "disapproval"  # 👎 or 😞 alone: it did not
    GREETING = "greeting"  # hi, 안녕하세요: no question yet


@dataclass(frozen=True, slots=True)
class Chatter:
    """What a non-question message is; ``weight``: its signal about the previous answer
    (+1 an acknowledgement, -1 a disapproval, 0 none)."""

    kind: ChatterKind
    weight: float


ACKNOWLEDGEMENT = Chatter(ChatterKind.ACKNOWLEDGEMENT, 1.0)
DISAPPROVAL = Chatter(ChatterKind.DISAPPROVAL, -1.0)
GREETING = Chatter(ChatterKind.GREETING, 0.0)

_APPROVING_EMOJI = set("👍👌🙏✅✔☑🙌👏💯🎉🥳❤💙💚💜🧡💛🤝😊🙂☺😀😃😄😁🤗😍🥰🤩😎🆗")
_DISAPPROVING_EMOJI = set("👎😞😢😭😡😠☹🙁😕😟😣😩😫💔❌")
_APPROVING_CODES = {
    "+1", "thumbsup", "ok_hand", "pray", "white_check_mark", "heavy_check_mark", "raised_hands",
    "clap", "100", "tada", "heart", "blush", "slightly_smiling_face", "smile", "smiley",
    "grinning", "hugging_face", "ok", "muscle", "sparkles", "star-struck", "sunglasses",
}  # fmt: skip
_DISAPPROVING_CODES = {
    "-1", "thumbsdown", "disappointed", "cry", "sob", "rage", "angry", "slightly_frowning_face",
    "white_frowning_face", "confused", "worried", "broken_heart", "x",
}  # fmt: skip

# Phrases, lower case, apostrophes dropped; a space matches any spacing (or none, for Korean
# written without spaces: "네알겠습니다").
_ACKNOWLEDGEMENTS = """
thanks|thank you|thankyou|thank u|thanx|thnx|thx|tnx|tks|ty|tysm|tyvm|thank|many thanks|cheers
ok|okay|okey|okie|oki|okey dokey|k|kk|got it|gotcha|understood|noted|makes sense|perfect|great
awesome|cool|nice|excellent|brilliant|lovely|amazing|fantastic|wonderful|sweet|neat|sounds good
sounds great|looks good|works|it works|that works|worked|it worked|that worked|works now
working now|its working|that helps|that helped|this helps|this helped|it helps|it helped|helpful
very helpful|super helpful|appreciate it|appreciated|much appreciated|i appreciate it|will do
all good|sure|yes|yep|yup|yeah|yea|ya|alright|all right|right|roger|roger that|np|no worries
no problem|solved|resolved|fixed|that fixed it|fixed it|that did it|that did the trick|done|good
good to know|good stuff|i see|ah i see|clear|crystal clear|legend|you rock|you are the best
youre the best|kudos|thats it|thats all|that is it|bravo|wow|thanks a lot|thanks a ton|ta
thanks a million|much obliged|obliged|merci|danke|gracias|fine|ok fine|that is fine|thats fine
감사|감사합니다|감사해요
감사드립니다|감사드려요|감사합니당|감사해용|감사감사|감사용|감사요|고마워|고마워요|고마워용
고맙습니다|고맙네요|고마워요오|고맙다|땡큐|땡스|쌩큐|댕큐|확인|확인했습니다|확인했어요|확인했어
확인했음|확인 완료|확인했습니당|확인합니다|확인요|알겠습니다|알겠어요|알겠어|알았어요|알았습니다
알았어|알겠슴다|알겠음|알겠네요|알겠습니당|이해했어요|이해했습니다|이해됐어요|이해가 됐어요
이해가 되었습니다|네|넵|넹|넴|예|예예|네네|응|웅|엉|그렇군요|그렇구나|아하|오케이|오키|오케|옙
좋아요|좋습니다|좋네요|좋아|좋군요|훌륭해요|최고|최고예요|최고에요|굿|굳|짱|해결|해결됐어요
해결됐습니다|해결되었습니다|해결했어요|해결했습니다|해결 완료|됐어요|됐습니다|되었습니다|됐네요
되네요|잘 되네요|잘 됩니다|잘 돼요|이제 됩니다|이제 되네요|이제 돼요|도움이 됐어요
도움이 되었어요|도움이 되었습니다|도움이 됐습니다|도움 됐어요|도움됐어요|도움이 많이 됐습니다
도움이 많이 됐어요|수고하세요|수고하셨습니다|수고 많으세요|수고하십시오|멋져요|대박
감솨|감사링|감삼다|감사염|고마웡|고마워여|인정|아하 그렇군요|알겠슴니다|넵넵|오키오키|오키도키
오케이오케이
"""
_GREETINGS = """
hi|hello|hey|heya|hiya|yo|howdy|hola|greetings|good morning|good afternoon|good evening|gm|안녕
안녕하세요|안녕하십니까|안뇽|반갑습니다|반가워요|하이|헬로|좋은 아침|좋은 아침입니다
"""
_FILLERS = """
so|very|much|so much|very much|a lot|lots|again|guys|team|everyone|everybody|all|folks|man|mate
buddy|bot|bro|dude|friend|for the help|for your help|for helping|for that|for this|for the info
for the information|for the quick reply|for the quick response|for the answer|for the link
for the explanation|for explaining|oh|ah|aha|oh ok|and|then|now|really|indeed|i|it|that|this
just|there|you|u|a|the|sir|madam|again and again|super|totally|too|also|well|정말|진짜|너무
너무너무|많이|대단히|매우|아주|완전|다시|한번|다시 한번|답변|빠른|빠른 답변|친절한|자세한|설명
도와주셔서|알려주셔서|답변해주셔서|답변해 주셔서|말씀|덕분에|아|오|와|우와|음|헐|ㅎ|그럼|그러면
이제|잘|여러분|님|봇|늘|항상|오늘도|요
"""


def _phrases(block: str) -> list[str]:
    return [p.strip() for p in block.replace("\n", "|").split("|") if p.strip()]


def _kinds() -> dict[str, ChatterKind | None]:
    kinds: dict[str, ChatterKind | None] = {}
    for block, kind in ((_FILLERS, None), (_GREETINGS, ChatterKind.GREETING)):
        kinds.update({p.replace(" ", ""): kind for p in _phrases(block)})
    acknowledgements = _phrases(_ACKNOWLEDGEMENTS)
    kinds.update({p.replace(" ", ""): ChatterKind.ACKNOWLEDGEMENT for p in acknowledgements})
    return kinds


def _pattern(phrases: list[str]) -> re.Pattern[str]:
    """Any one phrase, longest first; a Latin phrase must end at a word's end."""

    def one(phrase: str) -> str:
        body = r"\s*".join(re.escape(word) for word in phrase.split())
        return body + (r"(?![a-z0-9])" if _LATIN.search(phrase) else "")

    ordered = sorted(set(phrases), key=len, reverse=True)
    return re.compile("|".join(one(p) for p in ordered))


_KINDS = _kinds()
_PHRASE = _pattern(_phrases(_ACKNOWLEDGEMENTS) + _phrases(_GREETINGS) + _phrases(_FILLERS))


def _without_emoji(text: str) -> str:
    text = _EMOTICON.sub(" ", _SHORTCODE.sub(" ", text))
    return _LONE_JAMO.sub(" ", _KEYCAP.sub(" ", text))


def _expand_jamo(text: str) -> str:
    """Runs of initial-consonant abbreviations (``ㄱㅅㄱㅅ``) written out as their words."""

    def words(run: re.Match[str]) -> str:
        if not _JAMO_ABBREVIATIONS.fullmatch(run.group()):
            return run.group()
        return " ".join(_JAMO_WORDS[m.group()] for m in _JAMO_ABBREVIATION.finditer(run.group()))

    return _JAMO_RUN.sub(words, text)


def has_words(text: str) -> bool:
    """Whether ``text`` holds a letter or a number that is not part of an emoji."""
    return any(unicodedata.category(c)[0] in "LN" for c in _without_emoji(text))


def classify(text: str) -> Chatter | None:
    """The kind of chatter ``text`` is, or None when it may be a question (see the module)."""
    text = _expand_jamo(unicodedata.normalize("NFC", text).casefold())
    if any(mark in text for mark in _QUESTION_MARKS):
        return None
    if not has_words(text):
        return _emoji_signal(text)
    words = " ".join(
        "".join(c if unicodedata.category(c)[0] in "LN" else " " for c in _without_emoji(
            _APOSTROPHES.sub("", text)
        )).split()
    )  # fmt: skip
    found = _phrase_kinds(words)
    if found is None:
        return None
    if ChatterKind.ACKNOWLEDGEMENT in found:
        return ACKNOWLEDGEMENT
    if ChatterKind.GREETING in found:
        return GREETING
    return None  # fillers alone ("so", "정말"): too little to say what it is


def _phrase_kinds(words: str) -> set[ChatterKind | None] | None:
    """The kinds of the phrases ``words`` consists of, or None if something else is in it."""
    found: set[ChatterKind | None] = set()
    position = 0
    while position < len(words):
        if words[position] == " ":
            position += 1
            continue
        match = _PHRASE.match(words, position)
        if match is None:
            return None
        found.add(_KINDS[re.sub(r"\s", "", match.group())])
        position = match.end()
    return found


def _emoji_signal(text: str) -> Chatter | None:
    """A message of emoji only: approving (👍, ``:pray:``), disapproving (👎), or neither."""
    codes = set(_SHORTCODE.findall(text))
    emoticons = [m.group() for m in _EMOTICON.finditer(_SHORTCODE.sub(" ", text))]
    symbols = set(_EMOTICON.sub(" ", _SHORTCODE.sub(" ", text)))
    approving = bool(
        codes & _APPROVING_CODES
        or symbols & _APPROVING_EMOJI
        or any(_HAPPY_EMOTICON.search(e) for e in emoticons)
    )
    disapproving = bool(
        codes & _DISAPPROVING_CODES
        or symbols & _DISAPPROVING_EMOJI
        or any(_SAD_EMOTICON.search(e) for e in emoticons)
    )
    if approving and not disapproving:
        return ACKNOWLEDGEMENT
    if disapproving and not approving:
        return DISAPPROVAL
    return None


def prompt_language(text: str) -> Literal["ko", "en"] | None:
    """The language to ask for a question in: Korean if ``text`` has Hangul, English if it has
    Latin letters, None when it shows neither (emoji only)."""
    text = _SHORTCODE.sub(" ", text)
    if _HANGUL.search(text):
        return "ko"
    if _LATIN.search(text):
        return "en"
    return None
