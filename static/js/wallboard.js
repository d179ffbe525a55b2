// The queues wallboard, live: polls its JSON every second and updates the figures and lists in
// place. Caller names and numbers are anybody's text: written with textContent, never as HTML.
(function () {
  "use strict";
  var root = document.querySelector("[data-wallboard]");
  if (!root) return;
  var url = root.getAttribute("data-wallboard");
  var live = document.querySelector("[data-live-status]");

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    var mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? h + ":" : "") + mm + ":" + String(s).padStart(2, "0");
  }

  function shown(value, format) {
    if (format === "duration") return duration(value);
    if (value === null || value === undefined) return "—";
    if (format === "percent") return value + " %";
    return String(value);
  }

  function row(cells, labels) {
    var tr = document.createElement("tr");
    cells.forEach(function (text, i) {
      var td = document.createElement("td");
      td.setAttribute("data-label", labels[i]);
      td.textContent = text;
      tr.appendChild(td);
    });
    return tr;
  }

  function fill(tbody, items, empty, toCells, labels) {
    var rows = items.map(function (item) { return row(toCells(item), labels); });
    if (!rows.length) {
      var tr = document.createElement("tr"), td = document.createElement("td");
      td.colSpan = labels.length;
      td.className = "muted";
      td.textContent = empty;
      tr.appendChild(td);
      rows.push(tr);
    }
    tbody.replaceChildren.apply(tbody, rows);
  }

  function update(queue) {
    var card = root.querySelector('[data-queue="' + queue.id + '"]');
    card.querySelectorAll("[data-field]").forEach(function (el) {
      el.textContent = shown(queue[el.getAttribute("data-field")], el.getAttribute("data-format"));
    });
    card.querySelectorAll("[data-status]").forEach(function (el) {
      el.textContent = queue.by_status[el.getAttribute("data-status")] || 0;
    });
    card.querySelectorAll("[data-state]").forEach(function (el) {
      el.textContent = queue.by_state[el.getAttribute("data-state")] || 0;
    });
    fill(card.querySelector('[data-list="waiting"]'), queue.waiting, "Nobody waiting.", function (c) {
      return [c.number || "—", c.name || "—", c.state_text + (c.callback ? " (call back)" : ""), duration(c.waited)];
    }, ["Number", "Name", "State", "Waited"]);
    fill(card.querySelector('[data-list="agents"]'), queue.agents, "No agent in this queue.", function (a) {
      return [a.name, a.status_text, a.state_text, a.tier_state_text + " (level " + a.level + ")"];
    }, ["Agent", "Status", "State", "Tier"]);
  }

  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (response) {
        if (!response.ok) throw new Error(response.status);
        return response.json();
      })
      .then(function (data) {
        var known = Array.prototype.map.call(root.querySelectorAll("[data-queue]"), function (el) {
          return el.getAttribute("data-queue");
        }).join(",");
        // A queue added or removed changes the cards themselves: the page is built again.
        if (known !== data.queues.map(function (q) { return String(q.id); }).join(",")) {
          window.location.reload();
          return;
        }
        data.queues.forEach(update);
        // The server's clock in the company's zone, as the portal's other times (never the browser's).
        if (live) live.textContent = "live · " + data.at;
      })
      .catch(function () {
        if (live) live.textContent = "not updating: retrying";
      })
      .finally(function () { window.setTimeout(poll, 1000); });
  }
  window.setTimeout(poll, 1000);
})();
