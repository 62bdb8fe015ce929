(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("gart-lineage-data").textContent);
  var svg = document.getElementById("gart-graph");
  var viewport = document.getElementById("gart-viewport");
  var panel = document.getElementById("gart-details");
  var search = document.getElementById("gart-search");
  var nodes = new Map(), nodeEls = new Map(), incoming = new Map(), outgoing = new Map();
  data.nodes.forEach(function (n) {
    nodes.set(n.id, n); incoming.set(n.id, []); outgoing.set(n.id, []);
  });
  data.edges.forEach(function (e) {
    outgoing.get(e.source).push(e); incoming.get(e.target).push(e);
  });
  document.querySelectorAll("[data-node-id]").forEach(function (el) {
    nodeEls.set(el.getAttribute("data-node-id"), el);
  });
  var edgeEls = Array.prototype.slice.call(document.querySelectorAll("[data-edge]"));
  var emptyPanel = panel.innerHTML;
  var NODE_W = +svg.getAttribute("data-node-w"), NODE_H = +svg.getAttribute("data-node-h");
  var selected = null;

  function h(tag, cls, text) {
    var el = document.createElement(tag);
    if (cls) el.className = cls;
    if (text !== undefined && text !== null) el.textContent = String(text);
    return el;
  }
  function link(id) {
    var n = nodes.get(id);
    var a = h("a", "goto", n ? n.label : id);
    a.href = "#";
    a.setAttribute("data-goto", id);
    a.addEventListener("click", function (ev) { ev.preventDefault(); select(id, true); });
    return a;
  }
  function shellQuote(arg) {
    return /^[A-Za-z0-9_.\/:=@%+,-]+$/.test(arg) ? arg : "'" + arg.replace(/'/g, "'\\''") + "'";
  }
  function duration(a, b) {
    if (!a || !b) return null;
    var s = Math.round((Date.parse(b) - Date.parse(a)) / 1000);
    if (!(s >= 0)) return null;
    var hh = Math.floor(s / 3600), mm = Math.floor(s % 3600 / 60), ss = s % 60;
    return (hh ? hh + "h " : "") + (hh || mm ? mm + "m " : "") + ss + "s";
  }
  function row(dl, label, value, key) {
    var dt = h("dt", null, label), dd = h("dd");
    dd.setAttribute("data-field", key);
    if (value instanceof Node) dd.appendChild(value);
    else if (value === null || value === undefined || value === "") {
      dd.appendChild(h("span", "note", "—"));
    }
    else dd.textContent = String(value);
    dl.appendChild(dt); dl.appendChild(dd);
  }
  function refList(edges, end, other) {
    if (!edges.length) return h("span", "note", "none recorded");
    var ul = h("ul", "refs");
    edges.forEach(function (e) {
      var li = h("li");
      li.appendChild(link(e[end]));
      var bits = [];
      var n = nodes.get(e[end]);
      if (other && n && n.run) bits.push("[" + n.run.job_type + "] " + n.run.started);
      if (e.requested) bits.push("as @" + e.requested);
      if (e.path) bits.push(e.path);
      if (bits.length) li.appendChild(h("span", "note", "  " + bits.join(" · ")));
      ul.appendChild(li);
    });
    return ul;
  }
  function showDetails(n) {
    panel.textContent = "";
    panel.setAttribute("data-selected", n.id);
    var head = h("div");
    head.appendChild(h("span", "kind " + n.kind, n.kind === "run" ? "run" : "artifact version"));
    panel.appendChild(head);
    var dl = h("dl");
    if (n.kind === "run") {
      var r = n.run;
      panel.appendChild(h("h2", null, r.name));
      row(dl, "Run ID", h("code", null, r.id), "id");
      row(dl, "Job type", r.job_type, "job_type");
      row(dl, "Status", h("span", "pill " + r.status, r.status), "status");
      row(dl, "Exit code", r.exit_code, "exit_code");
      row(dl, "Command", h("pre", null, r.command.map(shellQuote).join(" ")), "command");
      var git = h("span");
      if (r.git_commit) git.appendChild(h("code", null, r.git_commit));
      else git.appendChild(h("span", "note", "not recorded"));
      if (r.git_dirty) {
        git.appendChild(document.createTextNode(" "));
        git.appendChild(h("span", "pill dirty", "dirty"));
      }
      row(dl, "Git commit", git, "git_commit");
      row(dl, "User", r.user, "user");
      row(dl, "Host", r.host, "host");
      row(dl, "Started", r.started, "started");
      row(dl, "Ended", r.ended, "ended");
      row(dl, "Duration", duration(r.started, r.ended), "duration");
      row(dl, "Inputs", refList(incoming.get(n.id), "source", false), "inputs");
      row(dl, "Outputs", refList(outgoing.get(n.id), "target", false), "outputs");
    } else {
      panel.appendChild(h("h2", null, n.label));
      row(dl, "Name", n.name, "name");
      row(dl, "Version", n.version || "unpublished", "version");
      row(dl, "Digest", h("code", null, n.digest), "digest");
      var al = h("span");
      n.aliases.forEach(function (a, i) {
        if (i) al.appendChild(document.createTextNode(" "));
        al.appendChild(h("span", "pill", a));
      });
      row(dl, "Aliases", n.aliases.length ? al : null, "aliases");
      row(dl, "Produced by", refList(incoming.get(n.id), "source", true), "produced_by");
      row(dl, "Consumed by", refList(outgoing.get(n.id), "target", true), "consumed_by");
    }
    panel.appendChild(dl);
    var tr = [];
    if (data.truncated.upstream.indexOf(n.id) >= 0) tr.push("upstream");
    if (data.truncated.downstream.indexOf(n.id) >= 0) tr.push("downstream");
    if (tr.length) {
      var more = "More " + tr.join(" and ") + " lineage exists beyond this page's depth.";
      panel.appendChild(h("p", "note", more));
    }
    panel.appendChild(h("p", "note", n.id));
  }
  function select(id, center) {
    var n = nodes.get(id);
    if (!n) return;
    selected = id;
    svg.classList.add("has-selection");
    nodeEls.forEach(function (el, nid) {
      el.classList.toggle("selected", nid === id);
      el.classList.remove("related");
    });
    edgeEls.forEach(function (el) {
      var s = el.getAttribute("data-source"), t = el.getAttribute("data-target");
      var on = s === id || t === id;
      el.classList.toggle("related", on);
      if (on) nodeEls.get(s === id ? t : s).classList.add("related");
    });
    showDetails(n);
    if (center) centerOn(id);
    setHash("#" + encodeURIComponent(id));
  }
  function setHash(url) {
    try { history.replaceState(null, "", url); } catch (e) { /* some file:// setups refuse */ }
  }
  function clearSelection() {
    selected = null;
    svg.classList.remove("has-selection");
    nodeEls.forEach(function (el) { el.classList.remove("selected", "related"); });
    edgeEls.forEach(function (el) { el.classList.remove("related"); });
    panel.innerHTML = emptyPanel;
    panel.removeAttribute("data-selected");
    setHash(location.pathname + location.search);
  }

  // Pan and zoom by a transform on one group: cheap even for thousands of nodes.
  var view = { x: 0, y: 0, k: 1 };
  function apply() {
    var t = "translate(" + view.x + "," + view.y + ") scale(" + view.k + ")";
    viewport.setAttribute("transform", t);
  }
  function fit() {
    var w = svg.clientWidth || 800, hgt = svg.clientHeight || 600;
    var gw = +svg.getAttribute("data-width"), gh = +svg.getAttribute("data-height");
    view.k = Math.min(1.25, w / gw, hgt / gh);
    view.x = (w - gw * view.k) / 2; view.y = (hgt - gh * view.k) / 2;
    apply();
  }
  function initialView() {
    // Fit when the text stays readable; otherwise keep a readable scale and start at the root.
    fit();
    if (view.k >= 0.55) return;
    view.k = 0.55;
    var root = data.root && nodeEls.get(data.root);
    if (root) { view.x = 0; view.y = 0; centerOn(data.root, true); return; }
    var hgt = svg.clientHeight || 600, gh = +svg.getAttribute("data-height");
    view.x = 0; view.y = Math.max(0, (hgt - gh * view.k) / 2); apply();
  }
  function trimLabels() {
    // Fonts differ per platform: shorten any label that still overflows its box.
    document.querySelectorAll(".node text").forEach(function (t) {
      var max = NODE_W - (+t.getAttribute("x")) - 12, s = t.textContent;
      if (!t.getComputedTextLength || t.getComputedTextLength() <= max) return;
      while (s.length > 1 && t.getComputedTextLength() > max) {
        s = s.slice(0, -1); t.textContent = s + "…";
      }
    });
  }
  function zoomAt(factor, cx, cy) {
    var k = Math.max(0.05, Math.min(4, view.k * factor));
    view.x = cx - (cx - view.x) * (k / view.k);
    view.y = cy - (cy - view.y) * (k / view.k);
    view.k = k;
    apply();
  }
  function centerOn(id, always) {
    var el = nodeEls.get(id);
    var m = /translate\(([-\d.]+),([-\d.]+)\)/.exec(el.getAttribute("transform"));
    var w = svg.clientWidth, hgt = svg.clientHeight;
    var bx = +m[1] + NODE_W / 2, by = +m[2] + NODE_H / 2;
    var sx = view.x + bx * view.k, sy = view.y + by * view.k;
    if (always || sx < 40 || sy < 40 || sx > w - 40 || sy > hgt - 40) {
      view.x = w / 2 - bx * view.k; view.y = hgt / 2 - by * view.k; apply();
    }
  }
  var drag = null;
  svg.addEventListener("pointerdown", function (ev) {
    if (ev.button !== 0 || ev.target.closest("[data-node-id]")) return;
    drag = { x: ev.clientX, y: ev.clientY, vx: view.x, vy: view.y, moved: false };
    svg.setPointerCapture(ev.pointerId);
  });
  svg.addEventListener("pointermove", function (ev) {
    if (!drag) return;
    var dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 3) { drag.moved = true; svg.classList.add("panning"); }
    view.x = drag.vx + dx; view.y = drag.vy + dy; apply();
  });
  svg.addEventListener("pointerup", function () {
    if (drag && !drag.moved) clearSelection();
    drag = null; svg.classList.remove("panning");
  });
  svg.addEventListener("wheel", function (ev) {
    ev.preventDefault();
    var r = svg.getBoundingClientRect();
    zoomAt(Math.exp(-ev.deltaY * 0.0015), ev.clientX - r.left, ev.clientY - r.top);
  }, { passive: false });
  nodeEls.forEach(function (el, id) {
    el.addEventListener("click", function () { select(id, false); });
    el.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); select(id, false); }
    });
  });
  document.getElementById("gart-fit").addEventListener("click", fit);
  function zoomCentre(f) { zoomAt(f, svg.clientWidth / 2, svg.clientHeight / 2); }
  var zin = document.getElementById("gart-zoom-in");
  var zout = document.getElementById("gart-zoom-out");
  zin.addEventListener("click", function () { zoomCentre(1.25); });
  zout.addEventListener("click", function () { zoomCentre(0.8); });
  function matches(q) {
    q = q.trim().toLowerCase();
    var hits = [];
    nodeEls.forEach(function (el, id) {
      var n = nodes.get(id);
      var extra = n.run ? n.run.job_type : (n.aliases || []).join(" ");
      var hay = (id + " " + n.label + " " + extra).toLowerCase();
      var on = q !== "" && hay.indexOf(q) >= 0;
      el.classList.toggle("match", on);
      if (on) hits.push(id);
    });
    return hits;
  }
  search.addEventListener("input", function () { matches(search.value); });
  search.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter") {
      var hits = matches(search.value);
      if (hits.length) select(hits[0], true);
    }
    if (ev.key === "Escape") { search.value = ""; matches(""); search.blur(); }
  });
  document.addEventListener("keydown", function (ev) {
    if (ev.target === search) return;
    if (ev.key === "Escape") clearSelection();
    if (ev.key === "/") { ev.preventDefault(); search.focus(); }
  });
  window.addEventListener("resize", fit);
  trimLabels();
  initialView();
  var start = decodeURIComponent(location.hash.slice(1));
  if (nodes.has(start)) select(start, true);
})();
