/* wardwatch single-file report: communication map, device details, table filter and sort. */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("graph-data").textContent);
  var byId = {};
  data.devices.forEach(function (n) { byId[n.id] = n; });
  var nodes = data.nodes.map(function (id) { return byId[id]; });

  function text(tag, value, cls) {
    var el = document.createElement(tag);
    el.textContent = value;
    if (cls) { el.className = cls; }
    return el;
  }

  function showDetails(id) {
    var n = byId[id];
    var box = document.getElementById("details");
    box.replaceChildren();
    if (!n) { return; }
    box.appendChild(text("h3", n.label));
    var dl = document.createElement("dl");
    [["Device", n.id], ["Kind", n.kind], ["MAC", n.macs.join(" ")], ["IP addresses", n.ips.join(" ")],
     ["VLAN", n.vlans.join(" ")], ["Vendor", n.vendor || ""], ["Model", n.model || ""],
     ["Type", n.device_type_label || ""], ["Firmware", n.firmware || ""], ["OS", n.os || ""],
     ["Roles", (n.roles || []).join(", ")], ["Notes", (n.notes || []).join("; ")],
     ["Host names", n.hostnames.join(" ")],
     ["First seen", n.first_seen], ["Last seen", n.last_seen], ["Via", n.via || ""]].forEach(function (kv) {
      if (!kv[1]) { return; }
      dl.appendChild(text("dt", kv[0]));
      dl.appendChild(text("dd", kv[1]));
    });
    box.appendChild(dl);
    box.appendChild(text("h4", "Evidence"));
    var ul = document.createElement("ul");
    n.evidence.forEach(function (e) {
      var seen = e.count > 1 ? ", seen " + e.count + "×" : "";
      ul.appendChild(text("li", e.attribute + " = " + e.value + " (" + e.source + ", " + e.confidence + seen + ")"));
    });
    box.appendChild(ul);
    box.appendChild(text("h4", "Services"));
    var ul2 = document.createElement("ul");
    data.edges.forEach(function (e) {
      if (e.source === id) { ul2.appendChild(text("li", "→ " + (byId[e.target] || {}).label + " " + e.service)); }
      if (e.target === id) { ul2.appendChild(text("li", "← " + (byId[e.source] || {}).label + " " + e.service)); }
    });
    box.appendChild(ul2);
  }

  var cy = null;
  if (typeof cytoscape === "function" && nodes.length) {
    var elements = nodes.map(function (n) {
      return { data: { id: n.id, label: n.label, kind: n.kind, router: n.router ? 1 : 0 } };
    }).concat(data.edges.map(function (e, i) {
      return { data: { id: "e" + i, source: e.source, target: e.target, label: e.service, weight: e.packets } };
    }));
    var big = nodes.length > 600;
    cy = cytoscape({
      container: document.getElementById("map"),
      elements: elements,
      wheelSensitivity: 0.3,
      style: [
        { selector: "node", style: { "label": "data(label)", "font-size": 9, "background-color": "#0b6e99",
          "width": 16, "height": 16, "text-valign": "bottom", "text-margin-y": 2, "color": "#1d2733" } },
        { selector: "node[kind = 'ip']", style: { "background-color": "#8a99a8", "shape": "round-rectangle" } },
        { selector: "node[router = 1]", style: { "background-color": "#b35900", "shape": "diamond" } },
        { selector: "edge", style: { "width": 1.2, "line-color": "#b7c3cf", "target-arrow-color": "#b7c3cf",
          "target-arrow-shape": "triangle", "curve-style": "bezier", "label": big ? "" : "data(label)",
          "font-size": 7, "color": "#5b6b7c", "text-rotation": "autorotate" } },
        { selector: ".faded", style: { "opacity": 0.12 } },
        { selector: "node:selected", style: { "border-width": 3, "border-color": "#1d2733" } }
      ],
      layout: big ? { name: "concentric", concentric: function (n) { return n.degree(); }, levelWidth: function () { return 2; } }
                  : { name: "cose", animate: false, randomize: false, nodeRepulsion: 9000, idealEdgeLength: 90 }
    });
    cy.on("tap", "node", function (evt) { showDetails(evt.target.id()); focus(evt.target); });
    window.wardwatchMap = cy;  /* for automation and the browser tests */
  }

  function focus(node) {
    if (!cy) { return; }
    var hood = node.closedNeighborhood();
    cy.elements().addClass("faded");
    hood.removeClass("faded");
  }

  var mapFilter = document.getElementById("map-filter");
  mapFilter.addEventListener("change", function () {
    if (!cy) { return; }
    var q = mapFilter.value.trim().toLowerCase();
    if (!q) { cy.elements().removeClass("faded"); return; }
    var match = nodes.filter(function (n) { return n.search.indexOf(q) >= 0; });
    if (match.length) {
      var node = cy.getElementById(match[0].id);
      focus(node);
      showDetails(match[0].id);
      cy.animate({ fit: { eles: node.closedNeighborhood(), padding: 40 } }, { duration: 200 });
    }
  });
  document.getElementById("map-reset").addEventListener("click", function () {
    mapFilter.value = "";
    if (cy) { cy.elements().removeClass("faded"); cy.fit(); }
  });

  var invFilter = document.getElementById("inv-filter");
  var rows = Array.prototype.slice.call(document.querySelectorAll("#devices tbody tr"));
  invFilter.addEventListener("input", function () {
    var q = invFilter.value.trim().toLowerCase();
    rows.forEach(function (r) { r.hidden = q !== "" && r.textContent.toLowerCase().indexOf(q) < 0; });
  });
  rows.forEach(function (r) {
    r.addEventListener("click", function () {
      showDetails(r.getAttribute("data-id"));
      if (cy) { var n = cy.getElementById(r.getAttribute("data-id")); if (n.length) { focus(n); } }
    });
  });

  document.querySelectorAll("#devices th").forEach(function (th, col) {
    th.addEventListener("click", function () {
      var tbody = document.querySelector("#devices tbody");
      var asc = th.getAttribute("data-sort") !== "asc";
      th.setAttribute("data-sort", asc ? "asc" : "desc");
      var sorted = rows.slice().sort(function (a, b) {
        var x = a.children[col].textContent, y = b.children[col].textContent;
        var nx = parseFloat(x), ny = parseFloat(y);
        var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
        return asc ? c : -c;
      });
      sorted.forEach(function (r) { tbody.appendChild(r); });
    });
  });
})();
