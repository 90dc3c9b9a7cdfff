"""Question intent: what kind of answer a question expects (a quantity, a date, a person, yes/no, a choice between
named options, an entity, a description), whether it asks for several things, and whether a verified answer
is of that kind. General English and Chinese question forms only: nothing here knows any document."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal

from chatbot.keyword import tokenize
from chatbot.markers import strip_markers
from chatbot.names import names_in
from chatbot.numbers import extract_quantities

if TYPE_CHECKING:
    from chatbot.query import Query

AnswerType = Literal["quantity", "date", "person", "name", "yesno", "choice", "entity", "description"]

_QUANTITY = re.compile(
    r"\bhow (many|much|long|large|big|far|old|high|fast)\b|\bwhat (percentage|proportion|share|number|amount|"
    r"total|size|scale|capacity|value)\b|\b(budget|cost|price|amount|percentage|headcount)\b|"
    r"多少|几[个家项大条名种位亿万年倍次天人所座台]|多大|多长|多高|多久|多远|金额|预算|比例|百分之|规模",
    re.IGNORECASE,
)
_DATE = re.compile(r"\b(when|what (date|year|month|day)|in which (year|month))\b|什么时候|何时|哪一?年|哪一?天|几月|"
                   r"几号|日期|哪个月", re.I)
_PERSON = re.compile(r"^\s*(who|whom|whose)\b|\bwho (is|was|are|were|leads?|led|heads?|said|spoke|stated)\b|谁", re.I)
# "Which <kind of named thing>": general English nouns for organisations, people and places, whose answer is a name.
_NAMED_KIND = re.compile(
    r"\bwhich (\w+ ){0,2}(compan(y|ies)|firms?|enterprises?|organi[sz]ations?|institutions?|suppliers?|vendors?|"
    r"manufacturers?|banks?|universit(y|ies)|agenc(y|ies)|ministr(y|ies)|persons?|people|officials?|leaders?|"
    r"countr(y|ies)|cit(y|ies)|partners?|brands?|subsidiar(y|ies)|investors?|founders?)\b", re.I)
_AUX_START = re.compile(r"^\s*(is|are|was|were|do|does|did|has|have|had|can|could|will|would|should|shall|"
                        r"may|might|must)\b", re.I)
_ZH_YESNO = re.compile(r"吗\s*[？?]?\s*$|是否|是不是|有没有|能否|可否|对吗|对不对")
_WH = re.compile(r"\b(what|which|who|whom|whose|when|where|why|how)\b", re.I)
_ENTITY = re.compile(r"^\s*(which|what)\b|\bwhich\b|哪家|哪个|哪位|什么|哪些", re.I)
_SEVERAL = re.compile(
    r"\b(which|what)\s+(?:\w+\s+)?(?!does\b|goes\b|was\b|has\b|is\b)\w+[^aiusv\W]s\b|\bwhat are\b|\blist\b|"
    r"\bboth\b|\beach\b|\ball the\b|\b(which|what|name|list)\s+(two|three|four|five|six|several)\b|\bcompare\b|"
    r"哪些|哪几|分别|哪[两三四五六七八九]|还是|和.+(相比|比较)|？.+？", re.IGNORECASE)
_OR_OPTIONS = re.compile(r"(?:,|:|\bbetween\b)\s*(?P<a>[^,?]+?)\s*,?\s+or\s+(?P<b>[^,?]+?)\s*\?*\s*$", re.I)
_ZH_OPTIONS = re.compile(r"(?P<a>[^，,？?]+?)还是(?P<b>[^，,？?]+?)[？?]?\s*$")


def expected_answer_type(question: str) -> AnswerType:
    q = question.strip()
    if _DATE.search(q):
        return "date"
    if _QUANTITY.search(q):
        return "quantity"
    if _PERSON.search(q):
        return "person"
    if _NAMED_KIND.search(q):
        return "name"
    if choice_options(q):
        return "choice"
    if (_AUX_START.search(q) and not _WH.search(q.split(",")[0])) or _ZH_YESNO.search(q):
        return "yesno"
    if _ENTITY.search(q):
        return "entity"
    return "description"


def choice_options(question: str) -> tuple[str, ...]:
    """"Which is older, X or Y?" -> (X, Y); "X还是Y？" -> (X, Y)."""
    m = _OR_OPTIONS.search(question) or _ZH_OPTIONS.search(question)
    if not m:
        return ()
    a, b = m.group("a").strip(), m.group("b").strip()
    a = re.sub(r"^(the|a|an|is|was|are|were)\s+", "", a, flags=re.I)
    b = re.sub(r"^(the|a|an)\s+", "", b, flags=re.I)
    return (a, b) if a and b else ()


def asks_for_several(question: str) -> bool:
    """Lists, "which companies", comparisons, two-part questions: they need evidence from several places."""
    return bool(_SEVERAL.search(question)) or expected_answer_type(question) == "choice"


def answers_question_type(question: str | Query, answer: str) -> bool:
    """A quantity or date question needs a number in the answer, a "who" question a name the question did not
    already give, a choice question one of its options; a fluent sentence without one is not an answer (it
    usually restates a related fact)."""
    from chatbot.query import as_query

    query = as_query(question)
    text = strip_markers(answer)
    if query.expects in ("quantity", "date"):
        return bool(extract_quantities(text))
    if query.expects in ("person", "name") and query.language == "en" and not re.search(r"[\u3400-\u9fff]", text):
        asked = query.text.lower()
        return any(not re.search(r"(?<![a-z])" + re.escape(n.lower()) + r"(?![a-z])", asked) for n in names_in(text))
    if query.expects == "choice" and query.options:
        words = set(tokenize(text))
        return any(set(tokenize(option)) & words for option in query.options)
    return True
