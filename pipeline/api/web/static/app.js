// verirag's web page: plain JavaScript over the JSON API, no build step, no third party.
// Every piece of document or answer text reaches the page through textContent, never as
// HTML, so a hostile document shows as inert text. The API key lives in this tab's
// sessionStorage and goes out as a Bearer header; no cookie is set, so another site cannot
// make the browser send a request in the reviewer's name (CSRF).
"use strict";

const KEY_SLOT = "verirag.key";
const state = { key: null, me: null, review: null };

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) {
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
  }
  return node;
}

class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

async function api(path, options = {}) {
  const headers = Object.assign({ Authorization: `Bearer ${state.key}` }, options.headers || {});
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (!response.ok) {
    let detail = `${response.status} ${response.statusText}`;
    try {
      const problem = await response.json();
      if (problem.detail) detail = problem.detail;
    } catch (_) {
      /* not a problem document */
    }
    throw new ApiError(response.status, detail);
  }
  return response;
}

const getJson = async (path) => (await api(path)).json();

function postJson(path, body) {
  return api(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
}

// -- signing in ------------------------------------------------------------------------------
async function signIn(key) {
  state.key = key;
  try {
    state.me = await getJson("/v1/me");
  } catch (error) {
    state.key = null;
    sessionStorage.removeItem(KEY_SLOT);
    throw error;
  }
  sessionStorage.setItem(KEY_SLOT, key);
  $("who-name").textContent = state.me.name;
  $("who-scope").textContent = `${state.me.scope} key`;
  for (const id of ["ask-collection", "doc-collection"]) fillSelect($(id), state.me.collections);
  fillSelect($("review-collection"), state.me.collections, "all");
  $("signin").hidden = true;
  $("tabs").hidden = false;
  $("who").hidden = false;
  for (const node of document.querySelectorAll("[data-needs-write]")) {
    node.hidden = state.me.scope === "read";
  }
  $("upload-form").hidden = state.me.scope === "read";
  showTab("ask");
}

function signOut() {
  sessionStorage.removeItem(KEY_SLOT);
  state.key = null;
  state.me = null;
  location.reload();
}

function fillSelect(select, names, emptyLabel) {
  select.replaceChildren();
  if (emptyLabel) select.append(el("option", { value: "", text: emptyLabel }));
  for (const name of names) select.append(el("option", { value: name, text: name }));
}

function showTab(name) {
  for (const id of ["ask", "review", "documents"]) $(id).hidden = id !== name;
  for (const button of document.querySelectorAll("#tabs button")) {
    if (button.dataset.tab === name) button.setAttribute("aria-current", "page");
    else button.removeAttribute("aria-current");
  }
  if (name === "review") loadReview().catch(showError("review-item"));
  if (name === "documents") loadDocuments().catch(showError("job"));
}

function showError(targetId) {
  return (error) => {
    $(targetId).replaceChildren(el("p", { class: "error", role: "alert", text: error.message }));
  };
}

// -- rendering an answer ---------------------------------------------------------------------
const VERDICT_MARK = { supported: "✓", unsupported: "✗", unverified: "?" };

function percent(value) {
  return value === null || value === undefined ? "n/a" : `${Math.round(value * 100)}%`;
}

function claimLabel(claim, index) {
  return `claim ${index + 1}: ${claim.verdict}` + (claim.reason ? ` (${claim.reason})` : "");
}

// The answer text with each claim marked by its verdict; a click on a claim scrolls to the
// source sentence it rests on.
function answerText(answer, prefix) {
  const box = el("p", { class: "answer-text" });
  const text = answer.text || "";
  const claims = [...(answer.claims || [])]
    .map((claim, index) => ({ claim, index }))
    .sort((a, b) => a.claim.start - b.claim.start);
  let at = 0;
  for (const { claim, index } of claims) {
    if (claim.start < at || claim.end > text.length) continue;
    box.append(text.slice(at, claim.start));
    const span = el("span", {
      class: `claim ${claim.verdict}`,
      "data-mark": VERDICT_MARK[claim.verdict] || "?",
      "data-claim": String(index),
      tabindex: "0",
      role: "button",
      "aria-label": claimLabel(claim, index),
      title: claimLabel(claim, index),
      text: text.slice(claim.start, claim.end),
    });
    const jump = () => showEvidence(prefix, index);
    span.addEventListener("click", jump);
    span.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        jump();
      }
    });
    box.append(span);
    at = claim.end;
  }
  box.append(text.slice(at));
  return box;
}

function showEvidence(prefix, claimIndex) {
  const marks = document.querySelectorAll(`#${prefix}-sources mark[data-claims~="${claimIndex}"]`);
  for (const old of document.querySelectorAll(`#${prefix}-sources mark.focused`)) {
    old.classList.remove("focused");
  }
  if (!marks.length) {
    const note = $(`${prefix}-evidence-note`);
    if (note) note.textContent = `Claim ${claimIndex + 1} cites no source sentence.`;
    return;
  }
  for (const mark of marks) mark.classList.add("focused");
  marks[0].scrollIntoView({ block: "center" });
  marks[0].focus();
}

// A cited source's text, with the sentences that claims rest on marked.
function sourceText(citation, claims) {
  const text = citation.snippet || "";
  const spans = [];
  claims.forEach((claim, index) => {
    for (const ev of claim.evidence || []) {
      if (ev.source === citation.number && ev.end <= text.length) {
        spans.push({ start: ev.start, end: ev.end, claims: [index] });
      }
    }
  });
  spans.sort((a, b) => a.start - b.start || b.end - a.end);
  const merged = [];
  for (const span of spans) {
    const last = merged[merged.length - 1];
    if (last && span.start < last.end) {
      last.end = Math.max(last.end, span.end);
      last.claims.push(...span.claims);
    } else merged.push({ ...span, claims: [...span.claims] });
  }
  const box = el("p", { class: "source-text" });
  let at = 0;
  for (const span of merged) {
    box.append(text.slice(at, span.start));
    box.append(
      el("mark", {
        "data-claims": span.claims.join(" "),
        tabindex: "-1",
        title: `evidence for claim ${span.claims.map((i) => i + 1).join(", ")}`,
        text: text.slice(span.start, span.end),
      }),
    );
    at = span.end;
  }
  box.append(text.slice(at));
  return box;
}

function renderAnswer(answer, prefix) {
  const claims = answer.claims || [];
  const sources = el("ol", { class: "sources", id: `${prefix}-sources` });
  for (const citation of answer.citations || []) {
    const where = [citation.title, (citation.headings || []).join(" > ")].filter(Boolean);
    sources.append(
      el(
        "li",
        { value: String(citation.number), id: `${prefix}-source-${citation.number}` },
        el("div", { class: "source-head" },
          el("strong", { text: `[${citation.number}] ${where.join(" · ") || citation.source}` }),
          el("span", { class: "source-path", text: ` ${citation.source}` })),
        sourceText(citation, claims),
      ),
    );
  }
  const decision = answer.decision || "review";
  return el(
    "article",
    { class: `answer decision-${decision}`, id: `${prefix}-answer` },
    el("p", { class: "short-answer", id: `${prefix}-short` },
      el("span", { class: "label", text: "Short answer: " }),
      answer.short_answer || "(none)",
      answer.short_answer_extracted
        ? el("span", { class: "label", text: " (the answer's own words; the model named none)" })
        : ""),
    el("p", { class: "decision" },
      el("span", { class: `badge ${decision}`, id: `${prefix}-decision`, text: decision.toUpperCase() }),
      ` ${answer.decision_reason || ""}`),
    el("p", { class: "confidence" },
      `Confidence ${percent(answer.confidence)}`,
      answer.calibrated === false ? " (not calibrated for this model)" : "",
      // A collection's own calibration is named: its confidence means something else there.
      (answer.calibration || "").startsWith("collection") ? ` · ${answer.calibration}` : ""),
    answerText(answer, prefix),
    document.getElementById("legend-template").content.cloneNode(true),
    el("p", { class: "evidence-note", id: `${prefix}-evidence-note`, role: "status" }),
    el("h3", { text: "Sources" }),
    sources,
  );
}

// -- asking, with the tokens streamed --------------------------------------------------------
async function ask(event) {
  event.preventDefault();
  const stream = $("stream");
  const status = $("ask-status");
  $("answer").replaceChildren();
  stream.textContent = "";
  stream.hidden = false;
  status.textContent = "Retrieving and generating…";
  $("ask-button").disabled = true;
  const body = {
    question: $("question").value,
    collection: $("ask-collection").value,
    k: Number($("ask-k").value),
    max_tokens: Number($("ask-max-tokens").value),
    temperature: Number($("ask-temperature").value),
  };
  try {
    const response = await api("/v1/ask/stream", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify(body),
    });
    await readEvents(response, (name, data) => {
      if (name === "token") {
        stream.textContent += data.text;
        status.textContent = "Generating… then every claim is checked against the sources.";
      } else if (name === "answer") {
        stream.hidden = true;
        status.textContent = "";
        $("answer").replaceChildren(renderAnswer(data, "ask"));
      } else if (name === "error") {
        status.textContent = "";
        showError("answer")(new Error(data.detail));
      }
    });
  } catch (error) {
    status.textContent = "";
    showError("answer")(error);
  } finally {
    $("ask-button").disabled = false;
  }
}

// Server-sent events from a POST (EventSource only does GET): one JSON `data:` per event.
async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue;
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) onEvent(name, JSON.parse(data.join("\n")));
    }
  }
}

// -- the review queue ------------------------------------------------------------------------
async function loadReview() {
  const reasons = await getJson("/v1/review/reasons");
  const reasonSelect = $("review-reason");
  const chosen = reasonSelect.value;
  fillSelect(reasonSelect, reasons, "any");
  reasonSelect.value = reasons.includes(chosen) ? chosen : "";
  const query = new URLSearchParams({ status: $("review-status").value, limit: "200" });
  if ($("review-collection").value) query.set("collection", $("review-collection").value);
  if (reasonSelect.value) query.set("reason", reasonSelect.value);
  const items = await getJson(`/v1/review?${query}`);
  const body = $("review-list").querySelector("tbody");
  body.replaceChildren();
  for (const item of items) {
    const open = el("button", { type: "button", class: "link", text: `#${item.id}` });
    open.addEventListener("click", () => openReview(item.id).catch(showError("review-item")));
    body.append(
      el("tr", { "data-item": String(item.id) },
        el("td", {}, open),
        el("td", { text: item.collection }),
        el("td", { text: item.question }),
        el("td", { text: item.decision_reason }),
        el("td", { text: item.resolution ? `${item.status}: ${item.resolution}` : item.status }),
      ),
    );
  }
  if (!items.length) body.append(el("tr", {}, el("td", { colspan: "5", text: "No items." })));
}

async function openReview(id) {
  const item = await getJson(`/v1/review/${id}`);
  state.review = item;
  const box = $("review-item");
  const parts = [
    el("h3", { text: `Item #${item.id} · ${item.collection}` }),
    el("p", { class: "question" }, el("span", { class: "label", text: "Question: " }), item.question),
    renderAnswer(item.answer, "review"),
  ];
  if (item.status === "resolved") {
    const when = item.resolved_at ? new Date(item.resolved_at * 1000).toISOString() : "";
    parts.push(
      el("p", { class: "resolved", id: "review-resolved" },
        `Resolved as ${item.resolution} by ${item.resolved_by || "unknown"} at ${when}.`,
        item.note ? ` Note: ${item.note}` : ""),
    );
    if (item.corrected_text) {
      parts.push(el("p", { class: "corrected" },
        el("span", { class: "label", text: "Corrected answer: " }), item.corrected_text));
    }
  } else if (state.me.scope !== "read") {
    parts.push(resolveForm(item));
  }
  box.replaceChildren(...parts);
  box.scrollIntoView({ block: "start" });
}

function resolveForm(item) {
  const note = el("textarea", { id: "review-note", rows: "2", maxlength: "4000" });
  const corrected = el("textarea", { id: "review-corrected", rows: "3", maxlength: "20000" });
  corrected.value = item.answer_text;
  const correctedLabel = el("label", { class: "wide", hidden: "" }, "Corrected answer ", corrected);
  const message = el("p", { role: "status", id: "review-message" });
  const send = async (resolution) => {
    const body = { resolution, note: note.value };
    if (resolution === "corrected") body.corrected_text = corrected.value;
    try {
      await postJson(`/v1/review/${item.id}`, body);
      await openReview(item.id);
      await loadReview();
    } catch (error) {
      message.textContent = error.message;
    }
  };
  const correctButton = el("button", { type: "button", id: "review-correct", text: "Correct…" });
  correctButton.addEventListener("click", () => {
    if (correctedLabel.hidden) {
      correctedLabel.hidden = false;
      correctButton.textContent = "Save correction";
    } else send("corrected");
  });
  return el("form", { class: "resolve", onsubmit: (e) => e.preventDefault() },
    el("label", { class: "wide" }, "Note ", note),
    correctedLabel,
    el("div", { class: "row" },
      el("button", { type: "button", id: "review-approve", onclick: () => send("correct"), text: "Approve" }),
      correctButton,
      el("button", { type: "button", id: "review-reject", onclick: () => send("incorrect"), text: "Reject" })),
    message);
}

async function exportReview() {
  const query = new URLSearchParams();
  if ($("review-collection").value) query.set("collection", $("review-collection").value);
  const blob = await (await api(`/v1/review/export?${query}`)).blob();
  const link = el("a", { href: URL.createObjectURL(blob), download: "verirag-review.jsonl" });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

// -- documents -------------------------------------------------------------------------------
async function loadDocuments() {
  const collection = $("doc-collection").value;
  const body = $("doc-list").querySelector("tbody");
  body.replaceChildren();
  if (!collection) return;
  let page;
  try {
    page = await getJson(`/v1/collections/${encodeURIComponent(collection)}/documents?limit=1000`);
  } catch (error) {
    if (error.status === 404) {
      $("doc-total").textContent = "This collection is empty.";
      return;
    }
    throw error;
  }
  for (const doc of page.items) {
    const remove = el("button", { type: "button", class: "danger", text: "Delete" });
    remove.hidden = state.me.scope === "read";
    remove.addEventListener("click", () => deleteDocument(collection, doc).catch(showError("job")));
    body.append(
      el("tr", { "data-doc": doc.doc_id },
        el("td", { text: doc.source }),
        el("td", { text: doc.title }),
        el("td", { text: String(doc.chunks) }),
        el("td", {}, remove)),
    );
  }
  $("doc-total").textContent = `${page.total} document(s).`;
}

async function deleteDocument(collection, doc) {
  if (!window.confirm(`Delete ${doc.source} from ${collection}?`)) return;
  const path = `/v1/collections/${encodeURIComponent(collection)}/documents/${encodeURIComponent(doc.doc_id)}`;
  await api(path, { method: "DELETE" });
  $("job").replaceChildren(el("p", { text: `Deleted ${doc.source}.` }));
  await loadDocuments();
}

async function upload(event) {
  event.preventDefault();
  const collection = $("doc-collection").value;
  const form = new FormData();
  for (const file of $("upload-files").files) form.append("files", file, file.name);
  const accepted = await (
    await api(`/v1/collections/${encodeURIComponent(collection)}/documents`, { method: "POST", body: form })
  ).json();
  await followJob(accepted.job_id);
}

async function followJob(jobId) {
  const box = $("job");
  for (;;) {
    const job = await getJson(`/v1/jobs/${encodeURIComponent(jobId)}`);
    const outcomes = new Map(job.outcomes.map((o) => [o.source.split("/").pop(), o]));
    const rows = job.files.map((name) => {
      const outcome = outcomes.get(name);
      const text = outcome
        ? `${outcome.outcome}${outcome.chunks ? `, ${outcome.chunks} chunk(s)` : ""}${outcome.reason ? `: ${outcome.reason}` : ""}`
        : job.status === "failed" ? "not indexed" : "waiting";
      return el("li", { "data-file": name, class: outcome ? outcome.outcome : "waiting" }, `${name}: ${text}`);
    });
    const progress = job.status === "running"
      ? ` (${job.files_done} of ${job.files.length} files, ${job.chunks_done} chunks so far)`
      : "";
    box.replaceChildren(
      el("p", {
        id: "job-status",
        "data-status": job.status,
        text: `Job ${job.status}${progress}` + (job.error ? `: ${job.error}` : ""),
      }),
      el("progress", { max: String(job.files.length), value: String(job.files_done) }),
      el("ul", {}, ...rows),
    );
    if (job.status === "done" || job.status === "failed") break;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  await loadDocuments();
}

// -- wiring ----------------------------------------------------------------------------------
document.addEventListener("DOMContentLoaded", () => {
  $("signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    $("signin-error").textContent = "";
    signIn($("api-key").value.trim()).catch((error) => {
      $("signin-error").textContent =
        error.status === 401 ? "That key is not valid, or it was revoked." : error.message;
    });
  });
  $("sign-out").addEventListener("click", signOut);
  for (const button of document.querySelectorAll("#tabs button")) {
    button.addEventListener("click", () => showTab(button.dataset.tab));
  }
  $("ask-form").addEventListener("submit", ask);
  $("review-filter").addEventListener("submit", (event) => {
    event.preventDefault();
    loadReview().catch(showError("review-item"));
  });
  $("review-export").addEventListener("click", () => exportReview().catch(showError("review-item")));
  $("doc-collection").addEventListener("change", () => loadDocuments().catch(showError("job")));
  $("upload-form").addEventListener("submit", (event) => upload(event).catch(showError("job")));
  $("signin-form").querySelector("button[type=submit]").disabled = false;
  const saved = sessionStorage.getItem(KEY_SLOT);
  if (saved) signIn(saved).catch(() => {});
});
