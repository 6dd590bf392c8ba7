// live.js keeps running deploys current without a reload. While the page holds an element
// marked data-active (a deploy queued or running), it fetches the same URL about once a
// second and swaps in the fresh copy of every element that carries data-live, matched by
// that attribute's value. Polling stops once nothing is active. Without JavaScript the
// page refreshes itself through a <noscript> meta refresh instead.
(function () {
  "use strict";
  var base = 1000, delay = base, busy = false;

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

  function start() {
    document.querySelectorAll("pre.log").forEach(function (pre) { pre.scrollTop = pre.scrollHeight; });
    if (active()) setTimeout(tick, delay);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
