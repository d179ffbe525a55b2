// Parts of a page kept current without a reload: every few seconds the page is fetched again and
// each [data-live-section] is replaced by the fresh one (HTML the server escaped, as on first load).
(function () {
  "use strict";
  var sections = document.querySelectorAll("[data-live-section]");
  if (!sections.length) return;
  var every = Number(document.body.getAttribute("data-live-every") || 2000);
  // A page answered to a form's POST (a refusal shown in place) names the page it polls.
  var source = document.querySelector("[data-live-url]");
  var url = source ? source.getAttribute("data-live-url") : window.location.href;

  function poll() {
    fetch(url, { cache: "no-store" })
      .then(function (response) {
        if (!response.ok) throw new Error(response.status);
        return response.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        sections.forEach(function (section) {
          var name = section.getAttribute("data-live-section");
          var next = fresh.querySelector('[data-live-section="' + name + '"]');
          if (next) section.replaceChildren.apply(section, Array.from(next.childNodes));
        });
      })
      .catch(function () {})
      .finally(function () { window.setTimeout(poll, every); });
  }
  window.setTimeout(poll, every);
})();
