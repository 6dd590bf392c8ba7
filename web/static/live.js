// live.js keeps running deploys current without a reload. While the page holds an element
// marked data-active (a deploy queued or running), it fetches the same URL about once a
// second and swaps in the fresh copy of every element that carries data-live, matched by
// that attribute's value. Polling stops once nothing is active. Without JavaScript the
// page refreshes itself through a <noscript> meta refresh instead.
//
// A deploy's page also names its output stream (data-stream-src, the server-sent events of
// GET /deploys/:id/log): the output is then tailed from the stream into a <pre> of its own,
// which the polling leaves in place (it keeps updating the status and the fields). The
// marker's data-stream says how the stream stands: "open", "ended", or "failed" (the
// polling then brings the output as before).
(function () {
  "use strict";
  var base = 1000, delay = base, busy = false;
  var streamed = null; // the stream's <pre>, once it has written one

  function active() { return document.querySelector("[data-active]") !== null; }

  // atBottom tells whether a log is scrolled to its end, so a growing log keeps following.
  function atBottom(el) { return el.scrollHeight - el.scrollTop - el.clientHeight < 8; }

  function swap(doc) {
    var fresh = new Map();
    doc.querySelectorAll("[data-live]").forEach(function (el) {
      fresh.set(el.getAttribute("data-live"), el);
    });
    document.querySelectorAll("[data-live]").forEach(function (el) {
      var next = fresh.get(el.getAttribute("data-live"));
      if (!next) {
        // Gone from the fresh page (it no longer matches a filter): stop waiting for it.
        el.removeAttribute("data-active");
        return;
      }
      if (next.outerHTML === el.outerHTML) return;
      var logs = Array.prototype.map.call(el.querySelectorAll("pre.log"), function (pre) {
        return { top: pre.scrollTop, follow: atBottom(pre) };
      });
      var node = document.importNode(next, true);
      var mine = streamed && el.contains(streamed) ? el.querySelector("[data-output]") : null;
      var theirs = mine && node.querySelector("[data-output]");
      if (theirs) theirs.replaceWith(mine); // the stream's output is newer than the page's
      el.replaceWith(node);
      node.querySelectorAll("pre.log").forEach(function (pre, i) {
        var was = logs[i];
        pre.scrollTop = !was || was.follow ? pre.scrollHeight : was.top;
      });
    });
    if (doc.title) document.title = doc.title;
  }

  function tick() {
    if (busy || !active()) return;
    busy = true;
    fetch(location.href, { credentials: "same-origin", cache: "no-store", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.text();
      })
      .then(function (html) {
        swap(new DOMParser().parseFromString(html, "text/html"));
        delay = base;
      })
      .catch(function () {
        // The server is restarting or the network is gone: back off, keep trying.
        delay = Math.min(delay * 2, 30000);
      })
      .then(function () {
        busy = false;
        if (active()) setTimeout(tick, delay);
      });
  }

  // stream tails the output named by marker's data-stream-src into the deploy's output.
  function stream(marker) {
    if (typeof EventSource === "undefined") return;
    var es = new EventSource(marker.getAttribute("data-stream-src"));
    var state = function (s, text) {
      marker.setAttribute("data-stream", s);
      marker.textContent = text;
      marker.hidden = false;
    };
    // pre is the stream's <pre>, put in place of the page's output at the first event.
    var pre = function () {
      if (streamed) return streamed;
      var out = document.querySelector("[data-output]");
      if (!out) return null;
      streamed = document.createElement("pre");
      streamed.className = "log";
      streamed.setAttribute("data-streamed", "");
      out.replaceChildren(streamed);
      return streamed;
    };
    var append = function (node, el) {
      var follow = atBottom(el);
      el.appendChild(node);
      if (follow) el.scrollTop = el.scrollHeight;
    };
    es.addEventListener("open", function () { state("open", "Output streams live."); });
    es.addEventListener("output", function (e) {
      var el = pre();
      if (el) append(document.createTextNode(e.data), el);
    });
    es.addEventListener("gap", function (e) {
      var el = pre();
      if (!el) return;
      var mark = document.createElement("span");
      mark.className = "gap";
      mark.textContent = "\n[… " + e.data + " …]\n";
      append(mark, el);
    });
    es.addEventListener("end", function (e) {
      es.close();
      // The output is whole; the polling brings the new status within a second.
      state("ended", "Deploy " + e.data + ".");
    });
    es.addEventListener("error", function () {
      // EventSource retries by itself (resuming from the last id); a refusal closes it.
      if (es.readyState !== EventSource.CLOSED) return;
      if (streamed) streamed.removeAttribute("data-streamed");
      streamed = null;
      state("failed", "The live output stream failed; the page refreshes instead.");
    });
  }

  function start() {
    document.querySelectorAll("pre.log").forEach(function (pre) { pre.scrollTop = pre.scrollHeight; });
    var marker = document.querySelector("[data-stream-src]");
    if (marker && active()) stream(marker);
    if (active()) setTimeout(tick, delay);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
