"""Errors a user can cause, each with a message that says what to do; adapters show the message."""


class ChatbotError(Exception):
    """Base class: the message is meant for the user, never a stack trace."""

    status_code = 400


class EmptyQuestion(ChatbotError):
    def __init__(self) -> None:
        super().__init__("The question is empty. Type a question about the documents.")


class QuestionTooLong(ChatbotError):
    status_code = 413

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(
            f"The question is {length} characters long; the limit is {limit}. Shorten it and ask again."
        )


class IndexMissing(ChatbotError):
    status_code = 503

    def __init__(self, where: str) -> None:
        super().__init__(f"No index found at {where}. Run `chatbot ingest` first to build it.")


class ModelMissing(ChatbotError):
    status_code = 503


class LLMUnavailable(ChatbotError):
    status_code = 502


class DocumentUnreadable(ChatbotError):
    status_code = 422
