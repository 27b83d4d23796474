// The page: upload covers to /v1/covers:predict, draw one card per cover. No external resources.
"use strict";
const $ = (sel, root = document) => root.querySelector(sel);
let info = { levels: 5, explain: false };

async function loadInfo() {
  try {
    const r = await fetch("/v1/info");
    info = await r.json();
    $("#top-level").textContent = info.levels - 1;
    $("#model-info").textContent = `model sha256 ${info.sha256} · ${info.providers.join(", ")}`;
  } catch (e) { /* the page still works with the defaults */ }
}

function card(file) {
  const node = $("#card").content.firstElementChild.cloneNode(true);
  $(".thumb", node).src = URL.createObjectURL(file);
  $(".name", node).textContent = file.name;
  $(".level", node).textContent = "…";
  $("#results").prepend(node);
  return node;
}

function fill(node, rec, file) {
  if (rec.error) {
    $(".level-line", node).hidden = true;
    $(".expected", node).hidden = true;
    $(".error", node).textContent = rec.error;
    return;
  }
  $(".level", node).textContent = rec.level;
  $(".expected", node).textContent = `expected level ${rec.expected_level.toFixed(2)}`;
  const bars = $(".bars", node);
  bars.replaceChildren();
  rec.level_probs.forEach((p, k) => {
    const li = document.createElement("li");
    if (k === rec.level) li.className = "predicted";
    const pct = (100 * p).toFixed(1);
    li.innerHTML = `<span>level ${k}</span><span class="track"><span class="fill" style="width:${pct}%"></span></span><span class="pct">${pct}%</span>`;
    li.setAttribute("aria-label", `level ${k}: ${pct} percent`);
    bars.append(li);
  });
  if (info.explain) {
    const button = $(".explain", node);
    button.hidden = false;
    button.onclick = () => explain(node, file, button);
  }
}

async function explain(node, file, button) {
  button.disabled = true;
  button.textContent = "Explaining…";
  const body = new FormData();
  body.append("file", file, file.name);
  try {
    const r = await fetch("/v1/covers:explain", { method: "POST", body });
    if (!r.ok) throw new Error((await r.json()).error);
    const img = $(".overlay", node);
    img.src = URL.createObjectURL(await r.blob());
    img.title = "open full size";
    img.onclick = () => window.open(img.src, "_blank");
    img.hidden = false;
    $(".overlay-note", node).hidden = false;
    node.classList.add("explained");
    button.hidden = true;
  } catch (e) {
    $(".error", node).textContent = `explain: ${e.message}`;
    button.disabled = false;
    button.textContent = "Explain";
  }
}

async function predict(files) {
  if (!files.length) return;
  const nodes = files.map(card);
  const body = new FormData();
  files.forEach((f) => body.append("file", f, f.name));
  $("#status").textContent = `predicting ${files.length} cover${files.length > 1 ? "s" : ""}…`;
  try {
    const r = await fetch("/v1/covers:predict", { method: "POST", body });
    const answer = await r.json();
    if (!answer.predictions) throw new Error(answer.error || `HTTP ${r.status}`);
    answer.predictions.forEach((rec, j) => fill(nodes[j], rec, files[j]));
    $("#status").textContent = "";
  } catch (e) {
    nodes.forEach((n) => fill(n, { error: e.message }));
    $("#status").textContent = `failed: ${e.message}`;
  }
}

const drop = $("#drop");
$("#files").addEventListener("change", (e) => { predict([...e.target.files]); e.target.value = ""; });
["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.add("over"); }));
["dragleave", "drop"].forEach((t) => drop.addEventListener(t, () => drop.classList.remove("over")));
drop.addEventListener("drop", (e) => { e.preventDefault(); predict([...e.dataTransfer.files].filter((f) => f.type.startsWith("image/") || !f.type)); });
loadInfo();
