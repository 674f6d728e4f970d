// entrepot console: copy buttons, the info panel's tabs, the selection count.
// Everything works without this file; it only makes the pages handier.
(function () {
  'use strict';

  function onCopy(button) {
    var value = button.getAttribute('data-copy') || '';
    var done = function () {
      var label = button.textContent;
      button.textContent = 'Copied';
      button.classList.add('copied');
      setTimeout(function () {
        button.textContent = label;
        button.classList.remove('copied');
      }, 1500);
    };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(value).then(done, function () {});
    }
  }

  function onTab(tab) {
    var panel = tab.closest('.info-panel');
    if (!panel) return;
    var name = tab.getAttribute('data-tab');
    panel.querySelectorAll('[data-tab]').forEach(function (t) {
      var active = t === tab;
      t.classList.toggle('active', active);
      t.setAttribute('aria-selected', active ? 'true' : 'false');
    });
    panel.querySelectorAll('[data-tab-panel]').forEach(function (p) {
      p.hidden = p.getAttribute('data-tab-panel') !== name;
    });
  }

  function updateSelection(form) {
    var boxes = form.querySelectorAll('input[type=checkbox][name=selected]');
    var count = 0;
    boxes.forEach(function (b) {
      if (b.checked) count += 1;
      var row = b.closest('tr');
      if (row) row.classList.toggle('selected', b.checked);
    });
    var label = form.querySelector('.selection-count');
    if (label) label.textContent = count + ' selected';
    var button = form.querySelector('#show-info-panel');
    if (button) button.disabled = count === 0;
  }

  document.addEventListener('click', function (event) {
    var copy = event.target.closest('[data-copy]');
    if (copy) {
      event.preventDefault();
      onCopy(copy);
      return;
    }
    var tab = event.target.closest('[data-tab]');
    if (tab) onTab(tab);
  });

  document.addEventListener('change', function (event) {
    var form = event.target.closest('#secret-list');
    if (form) updateSelection(form);
  });

  document.addEventListener('DOMContentLoaded', function () {
    var form = document.getElementById('secret-list');
    if (form) updateSelection(form);
  });
})();
