//! Embeddings: the recorded model, which chunks still need a vector, storing vectors, and the
//! vector arm of search.
//!
//! Storage is `chunk_vectors` (one little-endian `f32` BLOB per chunk, all of the model in
//! `vector_state`). Search scans `VectorIndex`, an in-memory int8 copy (each vector normalized,
//! then scaled so its largest component is ±127), keeps the best `2 × depth + 16` by int8
//! cosine, and rescores those exactly in `f32` from the table inside the caller's read snapshot,
//! so a stale index entry can never produce a hit the snapshot does not hold. Why not sqlite-vec's
//! `vec0`: see the `db` module doc (measured 40 ms per KNN at 50k × 384 against about 2 ms here).
//!
//! The index follows the table incrementally (new rows by `seq`, removals by tombstone) and is
//! rebuilt when the model changes (`epoch`), when tombstones it has not seen were pruned
//! (`tombstone_floor`), or compacted in memory when a quarter of it is dead.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};

use super::Db;
use super::error::{BrainError, db_error};

/// Largest accepted vector length.
const MAX_DIMS: usize = 16_384;

/// The text embedded for a chunk: its page title, its context line (when any), its text.
pub(crate) fn embed_text(title: &str, context: Option<&str>, text: &str) -> String {
    match context.filter(|context| !context.is_empty()) {
        Some(context) => format!("{title}\n{context}\n{text}"),
        None => format!("{title}\n{text}"),
    }
}

pub(crate) fn encode(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|value| value.to_le_bytes()).collect()
}

/// `None` when the blob is not a whole number of `f32`s.
pub(crate) fn decode(blob: &[u8]) -> Option<Vec<f32>> {
    let (floats, rest) = blob.as_chunks::<4>();
    rest.is_empty().then(|| floats.iter().map(|bytes| f32::from_le_bytes(*bytes)).collect())
}

fn norm(vector: &[f32]) -> f32 {
    vector.iter().map(|value| value * value).sum::<f32>().sqrt()
}

/// Cosine similarity of two equally long vectors (0 when either is zero).
pub(crate) fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (norm_a, norm_b) = (norm(a), norm(b));
    if norm_a == 0.0 || norm_b == 0.0 {
        return 0.0;
    }
    a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>() / (norm_a * norm_b)
}

/// Appends the int8 code of `vector` (normalized) to `codes`; returns its scale, so that
/// `code[i] * scale ≈ vector[i] / |vector|`. A zero vector gets zeros and scale 0.
pub(crate) fn quantize_into(vector: &[f32], codes: &mut Vec<i8>) -> f32 {
    quantize_values(vector.iter().copied(), vector.len(), codes)
}

/// `quantize_into` straight from a stored little-endian blob (no intermediate vector).
fn quantize_blob(floats: &[[u8; 4]], codes: &mut Vec<i8>) -> f32 {
    quantize_values(floats.iter().map(|bytes| f32::from_le_bytes(*bytes)), floats.len(), codes)
}

fn quantize_values(values: impl Iterator<Item = f32> + Clone, len: usize, codes: &mut Vec<i8>) -> f32 {
    let (sum_of_squares, largest) = values
        .clone()
        .fold((0.0f32, 0.0f32), |(sum, largest), value| (sum + value * value, largest.max(value.abs())));
    let length = sum_of_squares.sqrt();
    if length == 0.0 || largest == 0.0 || !length.is_finite() {
        codes.extend(std::iter::repeat_n(0, len));
        return 0.0;
    }
    let scale = largest / length / 127.0;
    let inverse = 1.0 / (largest / 127.0);
    // Round half away from zero by adding ±0.5 before the (saturating) truncating cast: no
    // libm call per component, which matters when 19 million of them load at once.
    codes.extend(values.map(|value| {
        let scaled = value * inverse;
        (scaled + 0.5f32.copysign(scaled)) as i8
    }));
    scale
}

/// Integer dot product. Sixteen independent lanes let the compiler vectorize the loop (about
/// 2.5x faster than a plain `zip().sum()` at 384 dimensions on baseline x86-64). Not inlined:
/// inlined into the scan loop, LLVM left it scalar (measured 4x slower).
#[inline(never)]
fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    let mut lanes = [0i32; 16];
    let (a_blocks, a_rest) = a.as_chunks::<16>();
    let (b_blocks, b_rest) = b.as_chunks::<16>();
    for (x, y) in a_blocks.iter().zip(b_blocks) {
        for ((lane, x), y) in lanes.iter_mut().zip(x).zip(y) {
            *lane += i32::from(*x) * i32::from(*y);
        }
    }
    let rest: i32 = a_rest.iter().zip(b_rest).map(|(x, y)| i32::from(*x) * i32::from(*y)).sum();
    lanes.iter().sum::<i32>() + rest
}

/// The model row and the counters the index follows, read in one snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
struct State {
    model: Option<(String, usize)>,
    epoch: i64,
    tombstone_floor: i64,
    max_seq: i64,
    max_tombstone: i64,
}

fn read_state(connection: &Connection) -> Result<State, BrainError> {
    connection
        .prepare_cached(
            "SELECT model, dims, epoch, tombstone_floor,
                    (SELECT COALESCE(MAX(seq), 0) FROM chunk_vectors),
                    (SELECT COALESCE(MAX(id), 0) FROM vector_tombstones)
             FROM vector_state WHERE id = 1",
        )
        .and_then(|mut statement| {
            statement.query_row([], |row| {
                let model: Option<String> = row.get(0)?;
                let dims: Option<i64> = row.get(1)?;
                Ok(State {
                    model: model.zip(dims.and_then(|dims| usize::try_from(dims).ok())),
                    epoch: row.get(2)?,
                    tombstone_floor: row.get(3)?,
                    max_seq: row.get(4)?,
                    max_tombstone: row.get(5)?,
                })
            })
        })
        .map_err(db_error("reading the embedding state"))
}

/// One candidate of the vector arm, best first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct VectorHit {
    pub chunk_id: i64,
    pub page_id: i64,
    pub similarity: f32,
}

/// The in-memory int8 copy of `chunk_vectors` (see the module doc).
#[derive(Debug, Default)]
pub(crate) struct VectorIndex {
    loaded: bool,
    epoch: i64,
    dims: usize,
    last_seq: i64,
    last_tombstone: i64,
    chunk_ids: Vec<i64>,
    page_slots: Vec<u32>,
    scales: Vec<f32>,
    codes: Vec<i8>,
    alive: Vec<bool>,
    dead: usize,
    positions: HashMap<i64, usize>,
    page_slot_of: HashMap<i64, u32>,
    /// Slot → (page id, slug). A page's slug never changes, so this only grows.
    pages: Vec<(i64, String)>,
}

impl VectorIndex {
    /// Whether the index already reflects a snapshot at least as new as `state`.
    fn is_current(&self, state: &State) -> bool {
        let dims = state.model.as_ref().map_or(0, |(_, dims)| *dims);
        self.loaded
            && self.epoch == state.epoch
            && self.dims == dims
            && self.last_tombstone >= state.tombstone_floor
            && self.last_seq >= state.max_seq
            && self.last_tombstone >= state.max_tombstone
    }

    /// Live entries.
    pub(crate) fn len(&self) -> usize {
        self.chunk_ids.len() - self.dead
    }

    pub(crate) fn dims(&self) -> usize {
        self.dims
    }

    /// Brings the index up to the snapshot `connection` reads.
    fn sync(&mut self, connection: &Connection, state: &State) -> Result<(), BrainError> {
        let Some((_, dims)) = state.model.as_ref() else {
            *self = VectorIndex { loaded: true, epoch: state.epoch, ..VectorIndex::default() };
            return Ok(());
        };
        let rebuild = !self.loaded
            || self.epoch != state.epoch
            || self.dims != *dims
            || self.last_tombstone < state.tombstone_floor;
        if rebuild {
            *self = VectorIndex {
                loaded: true,
                epoch: state.epoch,
                dims: *dims,
                last_tombstone: state.max_tombstone,
                ..VectorIndex::default()
            };
        } else {
            self.apply_tombstones(connection)?;
        }
        self.load_new(connection)?;
        if self.dead > 1024 && self.dead * 4 > self.chunk_ids.len() {
            self.compact();
        }
        Ok(())
    }

    fn apply_tombstones(&mut self, connection: &Connection) -> Result<(), BrainError> {
        let context = "reading vector tombstones";
        let mut statement = connection
            .prepare_cached("SELECT id, chunk_id FROM vector_tombstones WHERE id > ?1 ORDER BY id")
            .map_err(db_error(context))?;
        let mut rows = statement.query([self.last_tombstone]).map_err(db_error(context))?;
        while let Some(row) = rows.next().map_err(db_error(context))? {
            let id: i64 = row.get(0).map_err(db_error(context))?;
            let chunk_id: i64 = row.get(1).map_err(db_error(context))?;
            self.remove(chunk_id);
            self.last_tombstone = id;
        }
        Ok(())
    }

    fn remove(&mut self, chunk_id: i64) {
        if let Some(position) = self.positions.remove(&chunk_id)
            && let Some(alive) = self.alive.get_mut(position)
            && *alive
        {
            *alive = false;
            self.dead += 1;
        }
    }

    fn load_new(&mut self, connection: &Connection) -> Result<(), BrainError> {
        let context = "loading vectors";
        let mut statement = connection
            .prepare_cached(
                "SELECT v.seq, v.chunk_id, v.vector, c.page_id
                 FROM chunk_vectors v JOIN chunks c ON c.id = v.chunk_id
                 WHERE v.seq > ?1 ORDER BY v.seq",
            )
            .map_err(db_error(context))?;
        let mut rows = statement.query([self.last_seq]).map_err(db_error(context))?;
        while let Some(row) = rows.next().map_err(db_error(context))? {
            let seq: i64 = row.get(0).map_err(db_error(context))?;
            let chunk_id: i64 = row.get(1).map_err(db_error(context))?;
            let page_id: i64 = row.get(3).map_err(db_error(context))?;
            self.last_seq = seq;
            let blob = row.get_ref(2).and_then(|value| Ok(value.as_blob()?)).map_err(db_error(context))?;
            let (floats, rest) = blob.as_chunks::<4>();
            if !rest.is_empty() || floats.len() != self.dims {
                tracing::warn!(chunk_id, "stored vector has the wrong size; ignored");
                continue;
            }
            let page_slot = self.page_slot(connection, page_id)?;
            self.remove(chunk_id);
            self.positions.insert(chunk_id, self.chunk_ids.len());
            self.chunk_ids.push(chunk_id);
            self.page_slots.push(page_slot);
            self.scales.push(quantize_blob(floats, &mut self.codes));
            self.alive.push(true);
        }
        Ok(())
    }

    fn page_slot(&mut self, connection: &Connection, page_id: i64) -> Result<u32, BrainError> {
        if let Some(slot) = self.page_slot_of.get(&page_id) {
            return Ok(*slot);
        }
        let slug: String = connection
            .prepare_cached("SELECT slug FROM pages WHERE id = ?1")
            .and_then(|mut statement| statement.query_row([page_id], |row| row.get(0)))
            .map_err(db_error("loading vectors"))?;
        let slot = u32::try_from(self.pages.len())
            .map_err(|_| BrainError::Database("too many pages for the vector index".to_string()))?;
        self.pages.push((page_id, slug));
        self.page_slot_of.insert(page_id, slot);
        Ok(slot)
    }

    /// Drops dead entries from memory.
    fn compact(&mut self) {
        let dims = self.dims;
        let mut kept = VectorIndex {
            loaded: true,
            epoch: self.epoch,
            dims,
            last_seq: self.last_seq,
            last_tombstone: self.last_tombstone,
            page_slot_of: std::mem::take(&mut self.page_slot_of),
            pages: std::mem::take(&mut self.pages),
            ..VectorIndex::default()
        };
        for (index, code) in self.codes.chunks_exact(dims.max(1)).enumerate() {
            if !self.alive.get(index).copied().unwrap_or(false) {
                continue;
            }
            let (Some(chunk_id), Some(slot), Some(scale)) =
                (self.chunk_ids.get(index), self.page_slots.get(index), self.scales.get(index))
            else {
                continue;
            };
            kept.positions.insert(*chunk_id, kept.chunk_ids.len());
            kept.chunk_ids.push(*chunk_id);
            kept.page_slots.push(*slot);
            kept.scales.push(*scale);
            kept.codes.extend_from_slice(code);
            kept.alive.push(true);
        }
        *self = kept;
    }

    /// The int8 scan: entries (as `(approximate similarity, position)`) most similar to
    /// `query` among pages whose slug `allowed` accepts, enough of them for `rescore` to keep
    /// `depth`. Pure memory work, no database. (Running it on a second thread beside the
    /// full-text arm was tried: on the 2-core target under load it was slower, not faster.)
    pub(crate) fn scan(&self, query: &[f32], allowed: Option<&SlugCheck<'_>>, depth: usize) -> Candidates {
        if depth == 0 || self.dims == 0 || query.len() != self.dims || self.len() == 0 {
            return Candidates(Vec::new());
        }
        let mut query_code = Vec::with_capacity(self.dims);
        quantize_into(query, &mut query_code);
        let page_allowed: Option<Vec<bool>> =
            allowed.map(|allowed| self.pages.iter().map(|(_, slug)| allowed(slug)).collect());
        let mut scored: Vec<(f32, u32)> = Vec::with_capacity(self.len());
        let entries = self
            .codes
            .chunks_exact(self.dims)
            .zip(&self.scales)
            .zip(&self.alive)
            .zip(&self.page_slots)
            .enumerate();
        for (index, (((code, scale), alive), slot)) in entries {
            if !*alive {
                continue;
            }
            if let Some(page_allowed) = &page_allowed
                && !page_allowed.get(*slot as usize).copied().unwrap_or(false)
            {
                continue;
            }
            let Ok(index) = u32::try_from(index) else { break };
            scored.push((dot_i8(code, &query_code) as f32 * scale, index));
        }
        let keep = (depth.saturating_mul(2).saturating_add(16)).min(scored.len());
        if keep < scored.len() {
            scored.select_nth_unstable_by(keep, |a, b| b.0.total_cmp(&a.0));
            scored.truncate(keep);
        }
        Candidates(scored)
    }

    /// Exact `f32` cosine of the scanned candidates, read from the snapshot `connection` sees
    /// (candidates gone from it are dropped); the best `depth`, best first.
    pub(crate) fn rescore(
        &self,
        connection: &Connection,
        candidates: Candidates,
        query: &[f32],
        depth: usize,
    ) -> Result<Vec<VectorHit>, BrainError> {
        let context = "rescoring vectors";
        let mut statement = connection
            .prepare_cached(
                "SELECT v.vector, c.page_id FROM chunk_vectors v JOIN chunks c ON c.id = v.chunk_id
                 WHERE v.chunk_id = ?1",
            )
            .map_err(db_error(context))?;
        let mut hits = Vec::with_capacity(candidates.0.len());
        for (_, index) in candidates.0 {
            let Some(chunk_id) = self.chunk_ids.get(index as usize).copied() else { continue };
            let row = statement
                .query_row([chunk_id], |row| Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, i64>(1)?)))
                .optional()
                .map_err(db_error(context))?;
            let Some((blob, page_id)) = row else { continue };
            let Some(vector) = decode(&blob).filter(|vector| vector.len() == query.len()) else { continue };
            hits.push(VectorHit { chunk_id, page_id, similarity: cosine(query, &vector) });
        }
        hits.sort_by(|a, b| b.similarity.total_cmp(&a.similarity).then(a.chunk_id.cmp(&b.chunk_id)));
        hits.truncate(depth);
        Ok(hits)
    }
}

/// A slug predicate for the scan.
pub(crate) type SlugCheck<'a> = dyn Fn(&str) -> bool + 'a;

/// What `VectorIndex::scan` found, for `VectorIndex::rescore` of the same index.
#[derive(Debug)]
pub(crate) struct Candidates(Vec<(f32, u32)>);

impl Db {
    /// The embedding model the stored vectors belong to, with its dimensions.
    pub fn embedding_model(&self) -> Result<Option<(String, usize)>, BrainError> {
        self.read("reading the embedding model", |tx| Ok(read_state(tx)?.model))
    }

    /// Records the embedding model. When it differs from the stored one (name or dimensions),
    /// every vector is dropped first and `true` is returned: vectors of two models never mix,
    /// and everything gets re-embedded.
    pub fn set_embedding_model(&self, model_id: &str, dims: usize) -> Result<bool, BrainError> {
        let model_id = model_id.trim();
        if model_id.is_empty() {
            return Err(BrainError::Invalid("embedding model id must not be empty".to_string()));
        }
        if dims == 0 || dims > MAX_DIMS {
            return Err(BrainError::Invalid(format!(
                "embedding dimensions must be 1..={MAX_DIMS}, not {dims}"
            )));
        }
        let dims_sql = i64::try_from(dims).unwrap_or(i64::MAX);
        self.write("recording the embedding model", |tx| {
            let state = read_state(tx)?;
            let reset = match &state.model {
                Some((model, stored)) if model == model_id && *stored == dims => return Ok(false),
                Some(_) => true,
                None => false,
            };
            let context = "resetting vectors";
            if reset {
                tx.execute_batch(
                    "DELETE FROM chunk_vectors;
                     UPDATE chunks SET embedded = 0 WHERE embedded <> 0;
                     DELETE FROM vector_tombstones;",
                )
                .map_err(db_error(context))?;
            }
            tx.prepare_cached(
                "UPDATE vector_state SET model = ?1, dims = ?2, epoch = epoch + 1,
                    tombstone_floor = COALESCE(
                        (SELECT seq FROM sqlite_sequence WHERE name = 'vector_tombstones'), 0)
                 WHERE id = 1",
            )
            .and_then(|mut statement| statement.execute(params![model_id, dims_sql]))
            .map_err(db_error(context))?;
            if reset {
                tracing::info!(
                    model = model_id,
                    dims,
                    "embedding model changed; all vectors dropped for re-embedding"
                );
            }
            Ok(reset)
        })
    }

    /// Up to `limit` chunks (of live pages) without a vector, oldest first, with the text to
    /// embed: `title \n context \n text` (the context line only when there is one).
    pub fn chunks_to_embed(&self, limit: usize) -> Result<Vec<(i64, String)>, BrainError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read("listing chunks to embed", |tx| {
            let mut statement = tx
                .prepare_cached(
                    "SELECT c.id, p.title, c.context, c.text
                     FROM chunks c JOIN pages p ON p.id = c.page_id
                     WHERE c.embedded = 0 ORDER BY c.id LIMIT ?1",
                )
                .map_err(db_error("listing chunks to embed"))?;
            statement
                .query_map([limit], |row| {
                    let title: String = row.get(1)?;
                    let context: Option<String> = row.get(2)?;
                    let text: String = row.get(3)?;
                    Ok((row.get(0)?, embed_text(&title, context.as_deref(), &text)))
                })
                .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
                .map_err(db_error("listing chunks to embed"))
        })
    }

    /// Stores vectors for chunks, in one transaction. Every vector must have the recorded
    /// model's dimensions and finite values, else nothing is stored. Chunks that no longer exist
    /// (their page changed since `chunks_to_embed`) are skipped.
    pub fn store_vectors(&self, vectors: &[(i64, Vec<f32>)]) -> Result<(), BrainError> {
        if vectors.is_empty() {
            return Ok(());
        }
        if let Some((chunk_id, _)) =
            vectors.iter().find(|(_, vector)| vector.iter().any(|value| !value.is_finite()))
        {
            return Err(BrainError::Invalid(format!("vector for chunk {chunk_id} has a non-finite value")));
        }
        self.write("storing vectors", |tx| {
            let Some((model, dims)) = read_state(tx)?.model else {
                return Err(BrainError::Embedding(
                    "no embedding model recorded; call set_embedding_model first".to_string(),
                ));
            };
            if let Some((chunk_id, vector)) = vectors.iter().find(|(_, vector)| vector.len() != dims) {
                return Err(BrainError::Embedding(format!(
                    "vector for chunk {chunk_id} has {} dimensions; model `{model}` has {dims}",
                    vector.len()
                )));
            }
            let context = "storing vectors";
            for (chunk_id, vector) in vectors {
                let exists = tx
                    .prepare_cached("SELECT 1 FROM chunks WHERE id = ?1")
                    .and_then(|mut statement| statement.exists([chunk_id]))
                    .map_err(db_error(context))?;
                if !exists {
                    continue;
                }
                insert_vector(tx, *chunk_id, &encode(vector), true)?;
            }
            Ok(())
        })
    }

    /// Brings this handle's vector index up to the snapshot `connection` reads and returns a
    /// guard to search it with.
    pub(crate) fn synced_index(
        &self,
        connection: &Connection,
    ) -> Result<std::sync::RwLockReadGuard<'_, VectorIndex>, BrainError> {
        let state = read_state(connection)?;
        {
            let index = self.index.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            if index.is_current(&state) {
                return Ok(index);
            }
        }
        {
            let mut index = self.index.write().unwrap_or_else(std::sync::PoisonError::into_inner);
            if !index.is_current(&state) {
                let started = std::time::Instant::now();
                index.sync(connection, &state)?;
                tracing::debug!(
                    entries = index.len(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "vector index synced"
                );
            }
        }
        Ok(self.index.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

/// Stores (replacing) the vector of a chunk and marks the chunk embedded. `replace = false`
/// skips the delete for a chunk known to have no vector yet.
pub(crate) fn insert_vector(
    connection: &Connection,
    chunk_id: i64,
    blob: &[u8],
    replace: bool,
) -> Result<(), BrainError> {
    let context = "storing a vector";
    if replace {
        // An explicit delete (not INSERT OR REPLACE) so the tombstone trigger fires.
        connection
            .prepare_cached("DELETE FROM chunk_vectors WHERE chunk_id = ?1")
            .and_then(|mut statement| statement.execute([chunk_id]))
            .map_err(db_error(context))?;
    }
    connection
        .prepare_cached("INSERT INTO chunk_vectors (chunk_id, vector) VALUES (?1, ?2)")
        .and_then(|mut statement| statement.execute(params![chunk_id, blob]))
        .map_err(db_error(context))?;
    connection
        .prepare_cached("UPDATE chunks SET embedded = 1 WHERE id = ?1")
        .and_then(|mut statement| statement.execute([chunk_id]))
        .map_err(db_error(context))?;
    Ok(())
}

/// Drops tombstones once there are many (every index that had not seen them rebuilds at its
/// next search). Part of `optimize`.
pub(crate) fn prune_tombstones(connection: &Connection) -> Result<(), BrainError> {
    let context = "pruning vector tombstones";
    let count: i64 = connection
        .query_row("SELECT COUNT(*) FROM vector_tombstones", [], |row| row.get(0))
        .map_err(db_error(context))?;
    if count < 50_000 {
        return Ok(());
    }
    connection
        .execute_batch(
            "UPDATE vector_state SET tombstone_floor =
                 COALESCE((SELECT MAX(id) FROM vector_tombstones), tombstone_floor) WHERE id = 1;
             DELETE FROM vector_tombstones;",
        )
        .map_err(db_error(context))?;
    Ok(())
}
