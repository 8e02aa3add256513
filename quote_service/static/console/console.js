// Keyboard shortcuts of the console. Everything here is a shortcut for
// something a link, a button or Tab already reaches: the pages work without it.
(function () {
  "use strict";

  function typing(target) {
    if (!target || !target.tagName) return false;
    var tag = target.tagName.toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || target.isContentEditable;
  }

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-queue-row]"));
  }

  function select(index) {
    var all = rows();
    if (!all.length) return;
    index = Math.max(0, Math.min(all.length - 1, index));
    all.forEach(function (row) { row.classList.remove("selected"); row.removeAttribute("aria-selected"); });
    var row = all[index];
    row.classList.add("selected");
    row.setAttribute("aria-selected", "true");
    var link = row.querySelector("a[data-open]");
    if (link) link.focus();
  }

  function selectedIndex() {
    var all = rows();
    for (var i = 0; i < all.length; i++) {
      if (all[i].classList.contains("selected") || all[i].contains(document.activeElement)) return i;
    }
    return -1;
  }

  function submit(selector, scope) {
    var form = (scope || document).querySelector(selector);
    if (form) { form.requestSubmit ? form.requestSubmit() : form.submit(); return true; }
    return false;
  }

  function showHelp() {
    var dialog = document.getElementById("shortcuts");
    if (dialog && !dialog.open) dialog.showModal();
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing(event.target)) return;
    var key = event.key;
    if (key === "j" || key === "k") {
      if (!rows().length) return;
      var at = selectedIndex();
      select(key === "j" ? at + 1 : (at < 0 ? 0 : at - 1));
      event.preventDefault();
    } else if (key === "Enter") {
      var index = selectedIndex();
      if (index >= 0 && document.activeElement === document.body) {
        var link = rows()[index].querySelector("a[data-open]");
        if (link) { link.click(); event.preventDefault(); }
      }
    } else if (key === "a") {
      var chosen = selectedIndex();
      var scope = chosen >= 0 ? rows()[chosen] : document;
      if (submit("form[data-claim]", scope)) event.preventDefault();
    } else if (key === "n") {
      var note = document.getElementById("note");
      if (note) { note.focus(); event.preventDefault(); }
    } else if (key === "/") {
      var search = document.getElementById("q");
      if (search) { search.focus(); search.select(); event.preventDefault(); }
    } else if (key === "?") {
      showHelp();
      event.preventDefault();
    }
  });

  // Tells tests (and curious people) that the shortcuts are listening.
  document.documentElement.setAttribute("data-shortcuts", "on");

  document.addEventListener("click", function (event) {
    var opener = event.target.closest && event.target.closest("[data-show-shortcuts]");
    if (opener) { showHelp(); event.preventDefault(); }
    var closer = event.target.closest && event.target.closest("[data-close-dialog]");
    if (closer) { closer.closest("dialog").close(); }
  });
})();
