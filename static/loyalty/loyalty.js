// Copy buttons: [data-copy] names the element whose text (or value) goes to the clipboard.
// A script file, not inline code, so the pages keep a strict Content-Security-Policy.
(function () {
  "use strict";
  function say(text) {
    var live = document.getElementById("loyalty-live");
    if (live) { live.textContent = text; }
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) { return; }
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) { return; }
    var text = (source.value || source.textContent).trim();
    var done = function () {
      button.setAttribute("data-state", "copied");
      say(button.getAttribute("data-copied") || "Copied");
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { select(source); });
    } else {
      select(source);
      done();
    }
  });
  function select(node) {
    var range = document.createRange();
    range.selectNodeContents(node);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    try { document.execCommand("copy"); } catch (e) { /* the text stays selected for the member to copy */ }
  }
})();
