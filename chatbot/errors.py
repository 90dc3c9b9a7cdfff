"""Errors a user can cause, each with a message that says what to do; adapters show the message."""


class ChatbotError(Exception):
    """Base class: the message is meant for the user, never a stack trace. `code` is stable for clients."""

    status_code = 400
    code = "bad_request"
    retry_after: float | None = None


class EmptyQuestion(ChatbotError):
    code = "empty_question"

    def __init__(self) -> None:
        super().__init__("The question is empty. Type a question about the documents.")


class QuestionTooLong(ChatbotError):
    status_code = 413
    code = "question_too_long"

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(
            f"The question is {length} characters long; the limit is {limit}. Shorten it and ask again."
        )


class IndexMissing(ChatbotError):
    status_code = 503
    code = "index_missing"

    def __init__(self, where: str) -> None:
        super().__init__(f"No index found at {where}. Run `chatbot ingest` first to build it.")


class ModelMissing(ChatbotError):
    status_code = 503
    code = "model_missing"


class LLMUnavailable(ChatbotError):
    status_code = 502
    code = "llm_unavailable"


class DocumentUnreadable(ChatbotError):
    status_code = 422
    code = "document_unreadable"


class HistoryTooLong(ChatbotError):
    status_code = 413
    code = "history_too_long"

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(
            f"The conversation history is {length} characters long; the limit is {limit}. Start a new "
            "conversation or send fewer earlier turns."
        )


class Busy(ChatbotError):
    """The model is answering other questions and the waiting line is full."""

    status_code = 503
    code = "busy"

    def __init__(self, waiting: int, retry_after: float) -> None:
        super().__init__(
            f"The model is busy answering other questions ({waiting} waiting). Try again in a few seconds."
        )
        self.retry_after = retry_after


class DocumentNotFound(ChatbotError):
    status_code = 404
    code = "document_not_found"

    def __init__(self, doc_id: str) -> None:
        super().__init__(f"No indexed document has the id {doc_id!r}. GET /api/v1/documents lists them.")


class NotReady(ChatbotError):
    status_code = 503
    code = "not_ready"
    retry_after = 5.0


class Abandoned(ChatbotError):
    """The client went away while its question waited for the model: it leaves the line (nobody reads this)."""

    status_code = 499
    code = "abandoned"
