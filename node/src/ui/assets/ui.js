// Live updates for the fil-market UI. One EventSource per page: deal counts and transfer
// bars change in place; when deals changed since the page was rendered (the body's
// data-version), the page's content is fetched again and swapped in. No build step.
(function () {
  'use strict';
  var body = document.body;
  if (!body.dataset.live || !window.EventSource) {
    return;
  }
  var busy = false;

  function percent(t) {
    return t[1] === 0 ? 100 : (t[0] * 100) / t[1];
  }

  function editing() {
    var el = document.activeElement;
    var main = document.getElementById('main');
    return el && main && main.contains(el) && el.matches('input, select, textarea');
  }

  async function refresh() {
    busy = true;
    try {
      var r = await fetch(location.href, { credentials: 'same-origin' });
      if (r.redirected || !r.ok) {
        return; // logged out or gone: the next navigation says so
      }
      var doc = new DOMParser().parseFromString(await r.text(), 'text/html');
      var fresh = doc.getElementById('main');
      var main = document.getElementById('main');
      if (fresh && main) {
        main.replaceWith(fresh);
        body.dataset.version = doc.body.dataset.version || body.dataset.version;
      }
    } catch (e) {
      // The next event tries again.
    } finally {
      busy = false;
    }
  }

  var events = new EventSource('/ui/events');
  events.addEventListener('summary', function (ev) {
    var s;
    try {
      s = JSON.parse(ev.data);
    } catch (e) {
      return;
    }
    document.querySelectorAll('[data-count]').forEach(function (el) {
      var n = s.counts[el.dataset.count];
      el.textContent = n === undefined ? '0' : String(n);
    });
    document.querySelectorAll('progress[data-transfer]').forEach(function (el) {
      var t = s.transfers[el.dataset.transfer];
      if (t) {
        el.max = t[1];
        el.value = t[0];
      }
    });
    document.querySelectorAll('[data-transfer-text]').forEach(function (el) {
      var t = s.transfers[el.dataset.transferText];
      if (t) {
        el.textContent = percent(t).toFixed(1) + '% of ' + t[1] + ' B';
      }
    });
    if (String(s.version) !== body.dataset.version && !busy && !editing()) {
      refresh();
    }
  });
  // EventSource reconnects by itself after a dropped connection.
})();
