// The console's only script and stylesheet, served from its own routes so the CSP needs no inline code.

/**
 * Follows the live event stream: an EventSource on the table's `data-stream` (from `data-after`, the newest row the
 * server rendered), each `activity` frame a new row on top, at most `data-max-rows`. The frame's data is JSON and
 * goes into the cells as text (textContent), never as markup. `#events-status` says whether the stream is live.
 * EventSource reconnects on its own, resuming after the last frame's id (Last-Event-ID); when the server refused
 * it outright (503: too many streams), a new one is opened after a pause; when it was refused for want of a session
 * (401: signed out, expired, the node restarted), the page says so and stops. First of all, a `?token=`
 * the server refused (it redirects only a sign-in that worked) is taken out of the address and the history.
 */
export const consoleScript = `"use strict";
(function () {
  // A refused ?token= is answered where it was asked (401, 403): it leaves the address bar and the history here.
  if (/[?&]token=/.test(location.search) && window.history && typeof URLSearchParams === "function") {
    var params = new URLSearchParams(location.search);
    params.delete("token");
    var query = params.toString();
    history.replaceState(null, "", location.pathname + (query ? "?" + query : "") + location.hash);
  }
  var table = document.getElementById("event-table");
  var rows = document.getElementById("event-rows");
  var url = table && table.getAttribute("data-stream");
  if (table && rows && url && typeof EventSource === "function") {
    var status = document.getElementById("events-status");
    var stamp = document.getElementById("events-updated");
    var maxRows = Number(table.getAttribute("data-max-rows")) || 200;
    var after = table.getAttribute("data-after");
    var show = function (state, text) {
      if (!status) return;
      status.setAttribute("data-state", state);
      status.textContent = text;
    };
    var cell = function (row, text, className) {
      var td = document.createElement("td");
      if (className) td.className = className;
      td.textContent = text;
      row.appendChild(td);
    };
    var known = function (id) {
      var existing = rows.querySelectorAll("tr[data-event-id]");
      for (var i = 0; i < existing.length; i++) if (existing[i].getAttribute("data-event-id") === id) return true;
      return false;
    };
    var add = function (event) {
      if (!event || typeof event !== "object" || typeof event.id !== "string" || known(event.id)) return;
      var data = JSON.stringify(event.data === undefined ? null : event.data);
      var row = document.createElement("tr");
      row.setAttribute("data-event-id", event.id);
      row.className = "fresh";
      cell(row, typeof event.time === "string" ? event.time : "");
      cell(row, String(event.type));
      cell(row, typeof event.subject === "string" ? event.subject : "");
      cell(row, data.length > 160 ? data.slice(0, 160) + "\u2026" : data, "mono");
      var empty = rows.querySelector("tr.empty");
      if (empty) empty.remove();
      rows.insertBefore(row, rows.firstChild);
      while (rows.rows.length > maxRows) rows.deleteRow(rows.rows.length - 1);
      if (stamp) stamp.textContent = new Date().toISOString();
    };
    var connect = function () {
      show("connecting", "connecting\u2026");
      var source = new EventSource(after ? url + "?after=" + encodeURIComponent(after) : url);
      source.onopen = function () { show("live", "live"); };
      source.addEventListener("activity", function (message) {
        if (message.lastEventId) after = message.lastEventId;
        try {
          add(JSON.parse(message.data));
        } catch (error) {}
      });
      source.onerror = function () {
        if (source.readyState === EventSource.CONNECTING) {
          show("reconnecting", "reconnecting\u2026");
          return;
        }
        source.close();
        var retry = function () {
          show("offline", "disconnected; retrying");
          setTimeout(connect, 10000);
        };
        // EventSource does not say why it was refused: asked once, a 401 (signed out, expired, or the node
        // restarted) is said as such, instead of retrying a stream that will never let this page in.
        if (typeof fetch !== "function" || typeof AbortController !== "function") return retry();
        var probe = new AbortController();
        fetch(url, { credentials: "same-origin", signal: probe.signal }).then(function (response) {
          probe.abort();
          if (response.status === 401) show("signed-out", "signed out: reload to sign in again");
          else retry();
        }, retry);
      };
    };
    connect();
  }
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form && form.classList && form.classList.contains("purge") && !window.confirm("Delete every dead letter?")) {
      event.preventDefault();
    }
  });
})();
`;

export const consoleStyles = `
:root { color-scheme: light; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; font-size: 14px; }
body { margin: 0; background: #f6f7f9; color: #1d2430; }
header { display: flex; gap: 1.5rem; align-items: center; padding: 0.6rem 1.2rem; background: #1d2430; }
header a { color: #dfe6ef; text-decoration: none; }
header a.brand { font-weight: 700; color: #fff; }
header nav { display: flex; gap: 1rem; }
main { padding: 1rem 1.2rem; max-width: 1200px; }
section { background: #fff; border: 1px solid #dde2ea; border-radius: 6px; padding: 0.8rem 1rem; margin-bottom: 1rem; }
h1 { font-size: 1.3rem; margin: 0.2rem 0 0.6rem; }
h2 { font-size: 1.1rem; margin: 0.2rem 0 0.6rem; }
h3 { font-size: 1rem; margin: 0.8rem 0 0.4rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 0.25rem 0.5rem; border-bottom: 1px solid #edf0f4; vertical-align: top; }
th { font-weight: 600; color: #556274; }
.mono { word-break: break-all; }
.mono, pre { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
pre { background: #f2f4f7; padding: 0.6rem; overflow: auto; max-height: 24rem; }
.state-closed { color: #2e7d32; font-weight: 600; }
.state-open { color: #c62828; font-weight: 600; }
.state-half-open { color: #e08e00; font-weight: 600; }
.actions form { display: inline; margin-right: 0.3rem; }
details.raw summary { color: #8591a3; font-size: 0.8rem; cursor: pointer; }
button { cursor: pointer; border: 1px solid #b8c2d0; background: #f4f6f9; border-radius: 4px; padding: 0.2rem 0.6rem; }
button.replay { border-color: #3c6fb6; color: #1f4f95; }
button.delete, button.purge { border-color: #c62828; color: #a11d1d; }
form.purge { margin-top: 0.5rem; }
.notice-bar { padding: 0.5rem 0.8rem; border-radius: 4px; background: #e2ecfb; margin-bottom: 1rem; }
.error { color: #a11d1d; }
.hint { color: #556274; }
svg text { font-size: 12px; fill: #1d2430; }
svg text.col { font-weight: 600; fill: #556274; }
svg text.dur { fill: #556274; font-size: 11px; }
.diagram, .waterfall { max-width: 100%; height: auto; }
.muted { color: #8591a3; }
.status { font-size: 0.8rem; font-weight: 600; padding: 0.05rem 0.45rem; border-radius: 999px; background: #edf0f4; color: #556274; }
.status[data-state="live"] { background: #e3f4e8; color: #2e7d32; }
.status[data-state="connecting"], .status[data-state="reconnecting"] { background: #fff5d6; color: #8a6a00; }
.status[data-state="offline"], .status[data-state="signed-out"] { background: #fbe4e4; color: #a11d1d; }
tr.fresh td { animation: fresh 2s ease-out; }
@keyframes fresh { from { background: #fff5d6; } to { background: transparent; } }
`;
