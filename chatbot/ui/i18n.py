"""Interface text of the chat in English and Chinese (answers follow the question's language, not this)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, TypeVar

Lang = Literal["en", "zh"]
T = TypeVar("T")
LANGUAGES: list[tuple[str, str]] = [("English", "en"), ("中文", "zh")]

TEXT: dict[str, dict[str, str]] = {
    "tab_chat": {"en": "Chat", "zh": "问答"},
    "tab_documents": {"en": "Documents", "zh": "文件"},
    "question_label": {"en": "Your question", "zh": "您的问题"},
    "question_placeholder": {"en": "Ask a question about the documents…  (Enter to send)",
                             "zh": "请输入关于文件的问题…（回车发送）"},
    "send": {"en": "Ask", "zh": "提问"},
    "new_chat": {"en": "New conversation", "zh": "新对话"},
    "welcome_title": {"en": "Ask about the indexed documents", "zh": "向已收录的文件提问"},
    "welcome_body": {
        "en": "Answers come only from the indexed documents (see the Documents tab), with a [n] citation on every "
              "sentence: hover over it or click it to see the exact sentence. Follow-up questions use the "
              "conversation; a question the documents cannot answer is declined.",
        "zh": "答案只来自已收录的文件（见“文件”标签页），每句都带有 [n] 引用：悬停或点击即可查看原文句子。"
              "追问会结合之前的对话；文件无法回答的问题会被如实告知。",
    },
    "examples": {"en": "Try one of these", "zh": "试试这些问题"},
    "you": {"en": "You", "zh": "您"},
    "assistant": {"en": "Answer", "zh": "回答"},
    "searching": {"en": "Searching the documents…", "zh": "正在检索文件…"},
    "waiting": {"en": "Waiting for the model: another question is being answered…",
                "zh": "正在排队：模型正在回答另一个问题…"},
    "drafting": {"en": "Drafting — not verified yet", "zh": "草稿——尚未核实"},
    "verified": {"en": "Verified against the sources", "zh": "已对照出处核实"},
    "extractive": {"en": "Quoted from the documents: the language model did not answer",
                   "zh": "直接引用文件原文：语言模型没有响应"},
    "searched_as": {"en": "Searched as", "zh": "检索问题"},
    "removed_one": {"en": "1 sentence removed as unsupported", "zh": "已删除 1 个没有出处支持的句子"},
    "removed_many": {"en": "{n} sentences removed as unsupported", "zh": "已删除 {n} 个没有出处支持的句子"},
    "sources": {"en": "Sources", "zh": "出处"},
    "cited_sentence": {"en": "Cited sentence", "zh": "引用的句子"},
    "open_document": {"en": "Open document", "zh": "打开全文"},
    "characters": {"en": "characters", "zh": "字符"},
    "refused_title": {"en": "Not in the documents", "zh": "文件中没有答案"},
    "why_refused": {"en": "Why:", "zh": "原因（检查结果）："},
    "covers": {"en": "What the documents do cover", "zh": "文件涵盖的内容"},
    "nearest": {"en": "Closest passages found", "zh": "最接近的段落"},
    "error_title": {"en": "The question could not be answered", "zh": "无法回答这个问题"},
    "helpful": {"en": "Helpful", "zh": "有帮助"},
    "not_helpful": {"en": "Not helpful", "zh": "没有帮助"},
    "rated": {"en": "Thanks for the feedback.", "zh": "感谢您的反馈。"},
    "comment_placeholder": {"en": "Optional comment: what was wrong or missing?",
                            "zh": "可选：哪里有误或缺少什么？"},
    "comment_send": {"en": "Send comment", "zh": "发送评论"},
    "comment_saved": {"en": "Comment saved.", "zh": "评论已保存。"},
    "seconds": {"en": "{s} s", "zh": "{s} 秒"},
    "cached": {"en": "same question answered before", "zh": "此前回答过同样的问题"},
    "reader_title": {"en": "Reader", "zh": "阅读"},
    "reader_empty": {"en": "Click “Open document” under a source to read the whole document here, scrolled to "
                           "the cited sentence.",
                     "zh": "点击出处下方的“打开全文”，即可在此阅读整篇文件，并定位到引用的句子。"},
    "close": {"en": "Close", "zh": "关闭"},
    "doc_title": {"en": "Title", "zh": "标题"},
    "doc_source": {"en": "Source", "zh": "来源文件"},
    "doc_outlet": {"en": "Outlet", "zh": "媒体"},
    "doc_date": {"en": "Date", "zh": "日期"},
    "doc_language": {"en": "Language", "zh": "语言"},
    "doc_chunks": {"en": "Chunks", "zh": "分块数"},
    "doc_chars": {"en": "Characters", "zh": "字符数"},
    "doc_indexed": {"en": "Indexed at", "zh": "收录时间"},
    "documents_intro": {"en": "{n} document(s) are indexed. Answers cite only these.",
                        "zh": "已收录 {n} 份文件。答案只引用这些文件。"},
    "loading": {"en": "The chatbot is still loading its index and models; this takes a few seconds.",
                "zh": "正在加载索引和模型，请稍候几秒。"},
    "no_documents": {"en": "No documents are indexed yet. Run `chatbot ingest`.",
                     "zh": "尚未收录任何文件。请先运行 `chatbot ingest`。"},
    "refresh": {"en": "Refresh", "zh": "刷新"},
    "footer": {"en": "Runs offline on this machine. Feedback is stored locally to improve the answers.",
               "zh": "完全在本机离线运行。反馈仅保存在本地，用于改进答案。"},
    "api_docs": {"en": "API documentation", "zh": "API 文档"},
}


def pick(texts: Mapping[str, T], lang: str) -> T:
    """The text (or list) for `lang`, English when `lang` has none."""
    return texts.get(lang) or texts["en"]


def t(lang: str, key: str, **values: object) -> str:
    """The interface text `key` in `lang` (English when unknown), with {placeholders} filled."""
    text = pick(TEXT[key], lang)
    return text.format(**values) if values else text


def language_of(locale: str | None) -> Lang:
    """The interface language for a browser locale such as 'zh-CN' or 'en-US'."""
    return "zh" if (locale or "").strip().lower().startswith("zh") else "en"

