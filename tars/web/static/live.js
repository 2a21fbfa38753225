// TARS web view: live updates over server-sent events, and confirmations for actions.
// Plain script, no build step; every text goes in as textContent (never as HTML).
"use strict";

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

function confirmations() {
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
}

function liveList(section) {
  const list = document.getElementById("live-calls");
  const empty = document.getElementById("no-live");
  const source = new EventSource(section.dataset.events);
  source.addEventListener("live", (event) => {
    const calls = JSON.parse(event.data);
    list.replaceChildren();
    for (const call of calls) {
      const item = el("li");
      item.dataset.call = call.id;
      const link = el("a", "call-link", call.title);
      link.href = "/calls/" + call.id;
      item.append(link, " ", el("span", "meta", call.role + (call.step ? " · step " + call.step : "")));
      const lines = el("ol", "transcript latest");
      for (const line of call.lines) lines.append(lineItem(line));
      item.append(lines);
      list.append(item);
    }
    empty.hidden = calls.length > 0;
  });
}

function lineItem(line) {
  const item = el("li", "line line-" + line.speaker);
  item.dataset.line = line.id;
  item.append(el("span", "who", line.label), " ", el("span", "said", line.text), " ", el("time", null, line.at));
  return item;
}

function toolItem(tool) {
  const item = el("li", "tool " + (tool.allowed ? "allowed" : "refused"));
  item.dataset.tool = tool.id;
  item.append(el("span", "verdict", tool.allowed ? "allowed" : "refused"), " ", el("code", null, tool.tool),
              " ", el("time", null, tool.at));
  if (tool.reason) item.append(el("div", "reason", tool.reason));
  if (tool.arguments) item.append(el("div", "args", tool.arguments));
  if (tool.result) item.append(el("div", "result", "→ " + tool.result));
  return item;
}

function liveCall(section) {
  const transcript = document.getElementById("transcript");
  const tools = document.getElementById("tools");
  const source = new EventSource(section.dataset.events);
  source.addEventListener("update", (event) => {
    const update = JSON.parse(event.data);
    for (const line of update.lines) {
      if (!transcript.querySelector('[data-line="' + line.id + '"]')) transcript.append(lineItem(line));
    }
    for (const tool of update.tools) {
      if (!tools.querySelector('[data-tool="' + tool.id + '"]')) tools.append(toolItem(tool));
    }
    document.getElementById("no-lines").hidden = transcript.children.length > 0;
    document.getElementById("no-tools").hidden = tools.children.length > 0;
    const call = update.call;
    const status = el("span", "status status-" + call.status, call.status);
    document.getElementById("call-status").replaceChildren(status);
    document.getElementById("call-step").textContent = call.step || "—";
    if (call.final) {
      document.getElementById("result").hidden = false;
      for (const form of section.querySelectorAll("form.live-only")) form.remove();
      const outcome = document.getElementById("call-outcome");  // only calls with a playbook have one
      if (outcome) {
        outcome.replaceChildren(call.outcome || "—");
        if (call.outcome_source) outcome.append(" ", el("span", "meta", "(" + call.outcome_source + ")"));
      }
      document.getElementById("call-summary").textContent = call.summary || "Being written…";
    }
  });
  source.addEventListener("end", () => {
    source.close();
    const summary = document.getElementById("call-summary");
    if (summary.textContent === "Being written…") summary.textContent = "No summary was written.";
  });
}

document.addEventListener("DOMContentLoaded", () => {
  confirmations();
  const live = document.getElementById("live");
  if (live && live.dataset.events) liveList(live);
  const call = document.getElementById("call");
  if (call && call.dataset.events) liveCall(call);
});
