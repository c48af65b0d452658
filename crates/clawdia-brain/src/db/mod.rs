//! The brain database: schema, pages, chunks, links, timeline, facts, takes, embeddings and search.
