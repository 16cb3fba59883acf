// The console's only script and stylesheet, served from its own routes so the CSP needs no inline code.

/** Refreshes the live event stream: fetches the rows as HTML from the same origin, every `data-refresh-ms`. */
export const consoleScript = `"use strict";
(function () {
  var rows = document.getElementById("event-rows");
  if (rows) {
    var every = Number(document.body.getAttribute("data-refresh-ms")) || 2000;
    var busy = false;
    setInterval(function () {
      if (busy || document.hidden) return;
      busy = true;
      fetch("/_console/events/rows", { credentials: "same-origin", headers: { accept: "text/html" } })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) {
          if (html !== null) {
            rows.innerHTML = html;
            var stamp = document.getElementById("events-updated");
            if (stamp) stamp.textContent = new Date().toISOString();
          }
        })
        .catch(function () {})
        .then(function () { busy = false; });
    }, every);
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
`;
