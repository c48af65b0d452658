//! The link graph: how a `[[target]]` as written becomes lookup keys when stored, and how those
//! keys resolve to a live page when read. Resolution happens at query time, so a link written
//! before its target page existed starts resolving the moment the page is imported, and stops
//! when the page is deleted.
//!
//! A link resolves to the live page whose slug equals its `target_path` (`[[notes/people/alice]]`),
//! else whose title key equals its `target_key` (`[[Alice Smith]]` → a page titled "Alice Smith"),
//! else whose file-stem key does (`[[alice-smith]]`), else whose slug ends with `/target_path`
//! (`[[people/alice]]`). The first rule that matches wins; the lowest page id breaks a tie.

use rusqlite::{Connection, params};

use super::error::{BrainError, db_error};
use crate::types::slugify;

/// A correlated subquery giving the id of the page link `l` resolves to (NULL if none).
pub(crate) const RESOLVE: &str = "(SELECT p.id FROM pages p
      WHERE p.deleted_at IS NULL
        AND (p.slug = l.target_path OR p.key = l.target_key OR p.stem = l.target_key
             OR (p.stem = l.target_stem AND l.target_path <> ''
                 AND substr(p.slug, -length(l.target_path) - 1) = '/' || l.target_path))
      ORDER BY CASE WHEN p.slug = l.target_path THEN 0
                    WHEN p.key = l.target_key THEN 1
                    WHEN p.stem = l.target_key THEN 2
                    ELSE 3 END, p.id
      LIMIT 1)";

/// The lookup keys of a link target as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinkKeys {
    /// `slugify` of the whole target: `Acme Corp.` → `acme-corp`.
    pub key: String,
    /// Each `/` segment slugified: `People/Alice Smith` → `people/alice-smith`.
    pub path: String,
    /// The path's last segment: `alice-smith`.
    pub stem: String,
}

/// Keys of `target`: a `#heading` anchor and a `.md` extension are ignored.
pub(crate) fn link_keys(target: &str) -> LinkKeys {
    let target = target.split('#').next().unwrap_or(target).trim();
    let target = target.strip_suffix(".md").unwrap_or(target);
    let segments: Vec<String> =
        target.split('/').map(slugify).filter(|segment| !segment.is_empty()).collect();
    let stem = segments.last().cloned().unwrap_or_default();
    LinkKeys { key: slugify(target), path: segments.join("/"), stem }
}

/// The stem key of a slug: its last segment, slugified.
pub(crate) fn slug_stem(slug: &str) -> String {
    slugify(slug.rsplit('/').next().unwrap_or(slug))
}

/// Distinct pages that `page_id`'s links resolve to (itself excluded), in link order.
pub(crate) fn outgoing_pages(connection: &Connection, page_id: i64) -> Result<Vec<i64>, BrainError> {
    let sql = format!("SELECT {RESOLVE} FROM links l WHERE l.from_page = ?1 ORDER BY l.id");
    let mut statement = connection.prepare_cached(&sql).map_err(db_error("reading links"))?;
    let rows = statement
        .query_map([page_id], |row| row.get::<_, Option<i64>>(0))
        .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
        .map_err(db_error("reading links"))?;
    let mut pages = Vec::new();
    for target in rows.into_iter().flatten() {
        if target != page_id && !pages.contains(&target) {
            pages.push(target);
        }
    }
    Ok(pages)
}

/// A page as the target of links: what backlink candidates are found by.
#[derive(Debug, Clone)]
pub(crate) struct Target<'a> {
    pub id: i64,
    pub slug: &'a str,
    pub key: &'a str,
    pub stem: &'a str,
}

/// One link into a page from a live page.
#[derive(Debug, Clone)]
pub(crate) struct Incoming {
    pub from_page: i64,
    pub from_slug: String,
    pub from_title: String,
    pub kind: String,
    pub alias: Option<String>,
}

/// Links from live pages (other than the target itself) that resolve to `target`.
pub(crate) fn incoming_links(
    connection: &Connection,
    target: &Target<'_>,
) -> Result<Vec<Incoming>, BrainError> {
    let sql = format!(
        "SELECT src.id, src.slug, src.title, l.kind, l.alias
         FROM links l JOIN pages src ON src.id = l.from_page
         WHERE (l.target_path = ?2 OR l.target_key = ?3 OR l.target_key = ?4 OR l.target_stem = ?4)
           AND src.deleted_at IS NULL AND src.id <> ?1
           AND {RESOLVE} = ?1
         ORDER BY src.slug, l.id"
    );
    let mut statement = connection.prepare_cached(&sql).map_err(db_error("reading backlinks"))?;
    statement
        .query_map(params![target.id, target.slug, target.key, target.stem], |row| {
            Ok(Incoming {
                from_page: row.get(0)?,
                from_slug: row.get(1)?,
                from_title: row.get(2)?,
                kind: row.get(3)?,
                alias: row.get(4)?,
            })
        })
        .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
        .map_err(db_error("reading backlinks"))
}

/// Distinct live pages linking to page `page_id` (looked up by id).
pub(crate) fn incoming_pages(connection: &Connection, page_id: i64) -> Result<Vec<i64>, BrainError> {
    let row = connection
        .prepare_cached("SELECT slug, key, stem FROM pages WHERE id = ?1 AND deleted_at IS NULL")
        .and_then(|mut statement| {
            statement
                .query_map([page_id], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, String>(2)?))
                })
                .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
        })
        .map_err(db_error("reading backlinks"))?;
    let Some((slug, key, stem)) = row.into_iter().next() else {
        return Ok(Vec::new());
    };
    let target = Target { id: page_id, slug: &slug, key: &key, stem: &stem };
    let mut pages = Vec::new();
    for link in incoming_links(connection, &target)? {
        if !pages.contains(&link.from_page) {
            pages.push(link.from_page);
        }
    }
    Ok(pages)
}
