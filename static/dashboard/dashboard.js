/* Parley dashboard behaviour: copy buttons, the live session socket, the custom layout preview. */
(function () {
  "use strict";

  document.addEventListener("click", function (event) {
    const reveal = event.target.closest("[data-reveal]");
    if (reveal) {
      const field = document.querySelector(reveal.dataset.reveal);
      const shown = field.type === "password";
      field.type = shown ? "text" : "password";
      reveal.textContent = shown ? "Hide" : "Show";
      reveal.setAttribute("aria-pressed", String(shown));
      return;
    }
    const button = event.target.closest("[data-copy]");
    if (!button) return;
    const input = document.querySelector(button.dataset.copy);
    if (!input) return;
    input.select();
    const done = function () { button.textContent = "Copied"; setTimeout(function () { button.textContent = "Copy"; }, 1500); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(done, function () { document.execCommand("copy"); done(); });
    } else {
      document.execCommand("copy");
      done();
    }
  });

  // Live session page: a WebSocket authenticated by the Django session; events refresh the htmx panels.
  const PANEL_EVENTS = /^(room\.|layout\.|recording\.|stream\.|playback\.)/;
  function startLiveSession(indicator) {
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + indicator.dataset.liveSession;
    const pending = new Set();
    let flushTimer = null;
    let retryMs = 1000;
    function refresh(name) {
      pending.add(name);
      if (flushTimer) return;
      flushTimer = setTimeout(function () {
        flushTimer = null;
        pending.forEach(function (n) { htmx.trigger(document.body, "parley:" + n); });
        pending.clear();
      }, 250);
    }
    function connect() {
      const socket = new WebSocket(url);
      socket.onopen = function () { retryMs = 1000; indicator.textContent = "live updates on"; indicator.classList.add("connected"); };
      socket.onclose = function (event) {
        indicator.classList.remove("connected");
        if (event.code === 4401 || event.code === 4403) { indicator.textContent = "live updates refused"; return; }
        indicator.textContent = "reconnecting…";
        setTimeout(connect, retryMs);
        retryMs = Math.min(retryMs * 2, 15000);
      };
      socket.onmessage = function (message) {
        let data;
        try { data = JSON.parse(message.data); } catch (e) { return; }
        const type = data.event_type || "";
        if (type === "member.talking") {
          const member = (data.params && data.params.member) || {};
          const row = document.querySelector('[data-member-id="' + member.id + '"]');
          if (row) { row.classList.toggle("talking", !!member.talking); return; }
        }
        if (type.indexOf("member") === 0 || type === "memberList.updated" || type === "room.audience_count") refresh("members");
        if (PANEL_EVENTS.test(type) || type === "room.ended") refresh("panel");
        if (type !== "member.talking" && type !== "memberList.updated" && type !== "room.audience_count") refresh("timeline");
        if (type === "room.ended") { refresh("members"); indicator.textContent = "session ended"; }
      };
    }
    connect();
  }

  // Custom layout editor: draw the typed slots (x y width height [reservation], units of 360) as they change.
  function startLayoutPreview(textarea) {
    const svg = document.getElementById("layout-preview");
    const status = document.getElementById("layout-preview-status");
    if (!svg) return;
    const NS = "http://www.w3.org/2000/svg";
    function draw() {
      svg.querySelectorAll(".slot").forEach(function (node) { node.remove(); });
      const problems = [];
      let count = 0;
      textarea.value.split("\n").forEach(function (line, index) {
        const parts = line.replace(/,/g, " ").trim().split(/\s+/).filter(Boolean);
        if (!parts.length || parts[0][0] === "#") return;
        const numbers = parts.slice(0, 4).map(Number);
        if (parts.length < 4 || parts.length > 5 || numbers.some(isNaN)) { problems.push("line " + (index + 1)); return; }
        const [x, y, w, h] = numbers;
        const outside = x < 0 || y < 0 || w <= 0 || h <= 0 || x + w > 360 || y + h > 360;
        if (outside) problems.push("line " + (index + 1) + " outside the canvas");
        const rect = document.createElementNS(NS, "rect");
        rect.setAttribute("x", x); rect.setAttribute("y", y); rect.setAttribute("width", w); rect.setAttribute("height", h);
        rect.setAttribute("class", "slot" + (count === 0 ? " floor" : "") + (parts[4] ? " reserved" : ""));
        svg.appendChild(rect);
        count += 1;
      });
      status.textContent = count + " slot" + (count === 1 ? "" : "s") + (problems.length ? " — check " + problems.join(", ") : "");
    }
    textarea.addEventListener("input", draw);
    draw();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-live-session]").forEach(function (node) {
      if (node.textContent.trim() !== "ended") startLiveSession(node);
    });
    document.querySelectorAll("[data-layout-slots]").forEach(startLayoutPreview);
  });

  // The media worker rewrites the preview JPEG every few seconds: follow it while the session is live.
  setInterval(function () {
    document.querySelectorAll("img[data-preview-refresh]").forEach(function (img) {
      const url = new URL(img.src, location.href);
      url.searchParams.set("v", String(Date.now()));
      img.src = url.toString();
    });
  }, 5000);
})();
