// "Add a field" for a Django formset: each click adds one more empty row, cloned from the
// formset's empty form (its __prefix__ replaced by the next index), up to the formset's maximum.
(function () {
  "use strict";
  document.querySelectorAll("[data-formset]").forEach(function (formset) {
    var prefix = formset.getAttribute("data-formset");
    var total = formset.querySelector('input[name="' + prefix + '-TOTAL_FORMS"]');
    var max = formset.querySelector('input[name="' + prefix + '-MAX_NUM_FORMS"]');
    var template = formset.querySelector("template[data-formset-empty]");
    var rows = formset.querySelector("[data-formset-rows]");
    var add = formset.querySelector("[data-formset-add]");
    if (!total || !template || !rows || !add) return;

    function full() { return max && Number(total.value) >= Number(max.value); }
    add.hidden = false;
    add.disabled = full();
    add.addEventListener("click", function () {
      if (full()) return;
      var index = Number(total.value);
      var row = template.content.firstElementChild.cloneNode(true);
      row.querySelectorAll("[name], [id], [for]").forEach(function (el) {
        ["name", "id", "for"].forEach(function (attr) {
          var value = el.getAttribute(attr);
          if (value) el.setAttribute(attr, value.replace(/__prefix__/g, String(index)));
        });
      });
      rows.appendChild(row);
      total.value = String(index + 1);
      add.disabled = full();
      var first = row.querySelector("input, select, textarea");
      if (first) first.focus();
    });
  });
})();
