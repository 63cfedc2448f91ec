// Filter, sort and paginate the episodes of a trailsight report. Plain ES5, no dependencies.
// Sets data-report-ready="true" on <body> once it has run; an exception sets data-report-error.
(function () {
  "use strict";
  var body = document.body;
  window.addEventListener("error", function (e) {
    body.setAttribute("data-report-error", String(e.message || e));
  });
  function byId(id) { return document.getElementById(id); }
  function each(list, f) { Array.prototype.forEach.call(list, f); }
  function cmp(x, y) { return x < y ? -1 : x > y ? 1 : 0; }

  var list = byId("episode-list");
  if (!list) {
    body.setAttribute("data-report-ready", "true");
    return;
  }
  var cards = Array.prototype.slice.call(list.querySelectorAll("article.episode"));
  var pageSize = parseInt(body.getAttribute("data-page-size"), 10) || 20;
  var page = 0;
  var filters = {
    account: byId("f-account"),
    region: byId("f-region"),
    type: byId("f-type"),
    day: byId("f-day")
  };
  var api = byId("f-api");
  var sort = byId("sort");
  var sorts = {
    newest: function (a, b) { return cmp(b.dataset.start, a.dataset.start) || cmp(a.id, b.id); },
    oldest: function (a, b) { return cmp(a.dataset.start, b.dataset.start) || cmp(a.id, b.id); },
    change: function (a, b) {
      return (parseFloat(b.dataset.change) - parseFloat(a.dataset.change)) || sorts.newest(a, b);
    },
    api: function (a, b) { return cmp(a.dataset.api, b.dataset.api) || sorts.newest(a, b); },
    account: function (a, b) {
      return cmp(a.dataset.account, b.dataset.account) || cmp(a.dataset.region, b.dataset.region) ||
        sorts.newest(a, b);
    }
  };

  function matches(card) {
    for (var key in filters) {
      var wanted = filters[key].value;
      if (wanted && card.dataset[key] !== wanted) { return false; }
    }
    var q = api.value.trim().toLowerCase();
    return !q || card.dataset.api.toLowerCase().indexOf(q) >= 0;
  }

  function shownCards() {
    return cards.filter(matches).sort(sorts[sort.value] || sorts.newest);
  }

  // Only the cards of the current page are visible; the others stay hidden wherever they are
  // in the list, so a page change touches a page of cards, not thousands.
  var visibleNow = cards.filter(function (c) { return !c.hidden; });

  function render() {
    var shown = shownCards();
    var pages = Math.max(1, Math.ceil(shown.length / pageSize));
    page = Math.max(0, Math.min(page, pages - 1));
    var first = page * pageSize;
    var pageCards = shown.slice(first, first + pageSize);
    visibleNow.forEach(function (c) { c.hidden = true; });
    pageCards.forEach(function (c) {
      list.appendChild(c);
      c.hidden = false;
    });
    visibleNow = pageCards;
    byId("page-info").textContent = shown.length > pageSize ? "page " + (page + 1) + " of " + pages : "";
    byId("prev").disabled = page === 0;
    byId("next").disabled = page >= pages - 1;
    byId("shown").textContent = shown.length === 0
      ? "No Insight matches these filters."
      : "Showing " + (first + 1) + "\u2013" + Math.min(first + pageSize, shown.length) + " of " +
        shown.length + (shown.length < cards.length ? " (of " + cards.length + " in all)" : "");
  }

  function refilter() { page = 0; render(); }
  for (var key in filters) { filters[key].addEventListener("change", refilter); }
  sort.addEventListener("change", refilter);
  api.addEventListener("input", refilter);
  byId("prev").addEventListener("click", function () { page -= 1; render(); });
  byId("next").addEventListener("click", function () { page += 1; render(); });

  function setFilter(key, value) {
    if (key === "api") {
      api.value = value;
    } else if (filters[key]) {
      filters[key].value = value;
    }
    refilter();
    byId("episodes").scrollIntoView();
  }
  each(document.querySelectorAll("tr[data-filter]"), function (row) {
    row.addEventListener("click", function () { setFilter(row.dataset.filter, row.dataset.value); });
  });
  each(document.querySelectorAll("svg.timeline rect.day"), function (day) {
    day.addEventListener("click", function () { setFilter("day", day.getAttribute("data-day")); });
  });

  // A link to an episode (#ep-...) opens the page that holds it, clearing filters if needed.
  function showTarget() {
    var target = location.hash.length > 1 ? byId(decodeURIComponent(location.hash.slice(1))) : null;
    if (!target || cards.indexOf(target) < 0) { return; }
    if (!matches(target)) {
      for (var key in filters) { filters[key].value = ""; }
      api.value = "";
    }
    page = Math.floor(shownCards().indexOf(target) / pageSize);
    render();
    target.scrollIntoView();
  }
  window.addEventListener("hashchange", showTarget);

  render();
  showTarget();
  body.setAttribute("data-report-ready", "true");
})();
