from chatbot.chunking import chunk_document, split_sentences
from chatbot.corpus import load_corpus


def test_sentences_split_english_and_chinese_and_keep_offsets():
    text = "上海国资发布倡议。共有11家企业参与！ Mr. Smith arrived at 1.05 p.m. today. It rained."
    spans = split_sentences(text)
    pieces = [text[s.start : s.end] for s in spans]
    assert pieces[:2] == ["上海国资发布倡议。", "共有11家企业参与！"]
    assert "Mr. Smith arrived" in pieces[2]  # "Mr." is not a sentence end, "1.05" is not either
    assert pieces[-1] == "It rained."


def test_chunks_round_trip_to_the_document_text(corpus_dir):
    doc = load_corpus(corpus_dir).documents[0]
    chunks = chunk_document(doc, max_chars=600, overlap_sentences=1)
    assert len(chunks) > 5
    for chunk in chunks:
        assert doc.text[chunk.start : chunk.end] == chunk.text
        for s in chunk.sentences:
            assert chunk.start <= s.start < s.end <= chunk.end
    covered = {(s.start, s.end) for c in chunks for s in c.sentences}
    assert covered == {(s.start, s.end) for s in split_sentences(doc.text)}


def test_chunk_ids_are_stable_content_hashes(corpus_dir):
    doc = load_corpus(corpus_dir).documents[0]
    a = [c.chunk_id for c in chunk_document(doc)]
    b = [c.chunk_id for c in chunk_document(doc)]
    assert a == b and len(set(a)) == len(a)


def test_a_changed_document_gets_new_chunk_ids_even_where_its_text_is_the_same(corpus_dir):
    """An ingest writes a new version beside the committed one: its ids must not overwrite the old records."""
    doc = load_corpus(corpus_dir).documents[0]
    changed = doc.model_copy(update={"text": doc.text + "\nOne more line.", "content_hash": "other"})
    old, new = chunk_document(doc), chunk_document(changed)
    assert old[0].text == new[0].text and old[0].start == new[0].start
    assert not {c.chunk_id for c in old} & {c.chunk_id for c in new}


def test_chunking_with_given_sentences_is_the_same(corpus_dir):
    doc = load_corpus(corpus_dir).documents[0]
    assert chunk_document(doc, sentences=split_sentences(doc.text)) == chunk_document(doc)
