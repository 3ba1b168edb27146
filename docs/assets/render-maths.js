// Typesets the LaTeX that pymdownx.arithmatex (generic mode) leaves in the page, with the
// KaTeX copy this site serves itself (assets/katex): no network is needed.
// Inline maths arrives as <span class="arithmatex">\(...\)</span>, display maths as
// <div class="arithmatex">\[...\]</div>. A formula KaTeX cannot parse is shown as the
// error message in red (class katex-error), which the docs' browser test looks for.
(function () {
  function typeset(root) {
    root.querySelectorAll(".arithmatex").forEach(function (el) {
      var tex = el.textContent.trim();
      var display = el.tagName === "DIV";
      tex = tex.replace(/^\\[(\[]/, "").replace(/\\[)\]]$/, "");
      try {
        katex.render(tex, el, { displayMode: display, throwOnError: true });
      } catch (err) {
        el.classList.add("katex-error");
        el.textContent = String(err.message || err);
      }
    });
  }
  document.addEventListener("DOMContentLoaded", function () { typeset(document); });
})();
