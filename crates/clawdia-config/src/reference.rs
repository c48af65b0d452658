//! The documentation generated from the raw structs: the JSON Schema (schemars), a Markdown
//! reference rendered from that schema (every section and key with its type, default and
//! description), and the two shipped TOML files, the commented example and the file
//! `clawdia init` writes. Tests parse both files and check the example mentions every key.

use clawdia_core::one_line;
use serde_json::{Map, Value};

use crate::raw::RawConfig;

/// The JSON Schema of `clawdia.toml`, pretty-printed.
pub fn json_schema() -> String {
    format!("{:#}", schema())
}

/// A fully commented example showing every section and key.
pub fn example_toml() -> &'static str {
    include_str!("../clawdia.example.toml")
}

/// What `clawdia init` writes: a commented, valid config with one provider and one agent.
pub fn default_config_toml() -> String {
    include_str!("../clawdia.default.toml").to_string()
}

/// The reference doc for `clawdia.toml`, generated from the schema.
pub fn reference_markdown() -> String {
    let schema = schema();
    let mut walker = Walker::new(&schema);
    walker.out.push_str("# `clawdia.toml` reference\n\n");
    walker.out.push_str("Generated from the config schema (`clawdia config schema`); do not edit.\n\n");
    if let Some(description) = schema.get("description").and_then(Value::as_str) {
        walker.out.push_str(&one_line(description));
        walker.out.push_str("\n\n");
    }
    walker.table("", None, &schema);
    walker.out
}

/// Every `(section, key)` the reference documents, e.g. `("agents.<name>.tools", "allow")`.
#[cfg(test)]
pub(crate) fn documented_keys() -> Vec<(String, String)> {
    let schema = schema();
    let mut walker = Walker::new(&schema);
    walker.table("", None, &schema);
    walker.keys
}

/// The order of the top-level sections in the reference, as in the example file.
const SECTION_ORDER: [&str; 4] = ["gateway", "providers", "agents", "prices"];

fn schema() -> Value {
    schemars::schema_for!(RawConfig).to_value()
}

struct Walker<'a> {
    defs: Option<&'a Map<String, Value>>,
    out: String,
    keys: Vec<(String, String)>,
}

impl<'a> Walker<'a> {
    fn new(root: &'a Value) -> Self {
        Walker { defs: root.get("$defs").and_then(Value::as_object), out: String::new(), keys: Vec::new() }
    }

    /// Follows `$ref`, and unwraps `Option` (`anyOf: [T, null]`).
    fn resolve(&self, schema: &'a Value) -> &'a Value {
        if let Some(name) = schema.get("$ref").and_then(Value::as_str) {
            let target = name.rsplit('/').next().and_then(|name| self.defs?.get(name));
            return target.map_or(schema, |target| self.resolve(target));
        }
        if let Some(branches) = schema.get("anyOf").and_then(Value::as_array) {
            let non_null: Vec<&Value> = branches.iter().filter(|b| !is_null(b)).collect();
            if let [only] = non_null.as_slice() {
                return self.resolve(only);
            }
        }
        schema
    }

    /// Emits one `[section]`: its leaf keys as a table, then its sub-tables.
    fn table(&mut self, header: &str, description: Option<&str>, schema: &'a Value) {
        let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
            return;
        };
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|keys| keys.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut rows = Vec::new();
        let mut subsections = Vec::new();
        for (key, property) in properties {
            let target = self.resolve(property);
            let text =
                property.get("description").or_else(|| target.get("description")).and_then(Value::as_str);
            let child = if header.is_empty() { key.clone() } else { format!("{header}.{key}") };
            if is_table(target) {
                subsections.push((child, text, target));
            } else if let Some(entry) = self.map_entry(target) {
                let placeholder = if key == "prices" { "\"<provider>/<model>\"" } else { "<name>" };
                subsections.push((format!("{child}.{placeholder}"), text, entry));
            } else {
                let default = if required.contains(&key.as_str()) {
                    "required".to_string()
                } else {
                    property.get("default").map_or("unset".to_string(), |d| format!("`{}`", toml_value(d)))
                };
                let type_name = self.type_name(property);
                let text = one_line(text.unwrap_or("")).replace('|', "\\|");
                let row = format!("| `{key}` | {type_name} | {default} | {text} |\n");
                rows.push((default != "required", row));
                self.keys.push((header.to_string(), key.clone()));
            }
        }
        if !header.is_empty() {
            self.out.push_str(&format!("## `[{header}]`\n\n"));
            if let Some(description) = description {
                self.out.push_str(&format!("{}\n\n", one_line(description)));
            }
        }
        if !rows.is_empty() {
            // Required keys first, then the rest alphabetically (the schema's map is sorted).
            rows.sort_by_key(|(optional, _)| *optional);
            self.out.push_str("| key | type | default | description |\n|---|---|---|---|\n");
            rows.iter().for_each(|(_, row)| self.out.push_str(row));
            self.out.push('\n');
        }
        if header.is_empty() {
            let rank = |section: &str| SECTION_ORDER.iter().position(|s| section.starts_with(s));
            subsections.sort_by_key(|(section, ..)| rank(section));
        }
        for (child, text, target) in subsections {
            self.table(&child, text, target);
        }
    }

    /// The entry schema of a `[section.<name>]` map whose entries are tables.
    fn map_entry(&self, schema: &'a Value) -> Option<&'a Value> {
        let entry = self.resolve(schema.get("additionalProperties")?);
        is_table(entry).then_some(entry)
    }

    fn type_name(&self, schema: &'a Value) -> String {
        let schema = self.resolve(schema);
        if let Some(value) = schema.get("const") {
            return format!("`{}`", toml_value(value));
        }
        for combinator in ["anyOf", "oneOf"] {
            if let Some(branches) = schema.get(combinator).and_then(Value::as_array) {
                let names: Vec<String> =
                    branches.iter().filter(|b| !is_null(b)).map(|b| self.type_name(b)).collect();
                return names.join(" or ");
            }
        }
        let kind = match schema.get("type") {
            Some(Value::Array(kinds)) => kinds.iter().filter_map(Value::as_str).find(|k| *k != "null"),
            Some(kind) => kind.as_str(),
            None => None,
        };
        match kind {
            Some("array") => match schema.get("items") {
                Some(items) => format!("array of {}", self.type_name(items)),
                None => "array".to_string(),
            },
            Some("object") => match (
                schema.get("properties").and_then(Value::as_object),
                schema.get("additionalProperties"),
            ) {
                (Some(properties), _) => {
                    // Inline tables show their required keys (a secret reference's optional
                    // rotation keys are described in the file's introduction).
                    let required: Vec<&str> = schema
                        .get("required")
                        .and_then(Value::as_array)
                        .map(|r| r.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    let fields: Vec<String> = properties
                        .iter()
                        .filter(|(k, _)| required.is_empty() || required.contains(&k.as_str()))
                        .map(|(k, v)| format!("{k} = {}", self.type_name(v)))
                        .collect();
                    format!("`{{ {} }}`", fields.join(", ").replace('`', ""))
                }
                (None, Some(values)) if values.is_object() => {
                    format!("table of {}", self.type_name(values))
                }
                _ => "table".to_string(),
            },
            Some(kind) => kind.to_string(),
            None => "any".to_string(),
        }
    }
}

fn is_null(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("null")
}

fn is_table(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("object") && schema.get("properties").is_some()
}

/// A JSON value as it would be written in TOML.
fn toml_value(value: &Value) -> String {
    match value {
        Value::Null => "unset".to_string(),
        Value::String(text) => format!("{text:?}"),
        Value::Array(items) => format!("[{}]", items.iter().map(toml_value).collect::<Vec<_>>().join(", ")),
        Value::Object(map) if map.is_empty() => "{}".to_string(),
        Value::Object(map) => {
            let fields: Vec<String> = map.iter().map(|(k, v)| format!("{k} = {}", toml_value(v))).collect();
            format!("{{ {} }}", fields.join(", "))
        }
        other => other.to_string(),
    }
}
