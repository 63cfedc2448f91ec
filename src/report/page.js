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
  // The list holds activities (section.activity), each with its Insights (article.episode).
  // Filters apply to Insights; an activity is shown when one of its Insights matches, with only
  // the matching ones. Sorting and pages count activities.
  var groups = Array.prototype.slice.call(list.querySelectorAll("section.activity"));
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
  function cardsOf(group) {
    return Array.prototype.slice.call(group.querySelectorAll("article.episode"));
  }
  function firstApi(group) {
    var c = group.querySelector("article.episode");
    return c ? c.dataset.api : "";
  }
  var sorts = {
    newest: function (a, b) { return cmp(b.dataset.start, a.dataset.start) || cmp(a.id, b.id); },
    oldest: function (a, b) { return cmp(a.dataset.start, b.dataset.start) || cmp(a.id, b.id); },
    severity: function (a, b) {
      return (parseFloat(b.dataset.severity) - parseFloat(a.dataset.severity)) || sorts.newest(a, b);
    },
    change: function (a, b) {
      return (parseFloat(b.dataset.change) - parseFloat(a.dataset.change)) || sorts.newest(a, b);
    },
    api: function (a, b) { return cmp(firstApi(a), firstApi(b)) || sorts.newest(a, b); },
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

  function shownGroups() {
    return groups.filter(function (g) { return cardsOf(g).some(matches); })
      .sort(sorts[sort.value] || sorts.severity);
  }

  // Only the activities of the current page are visible; the others stay hidden wherever they
  // are in the list, so a page change touches a page of activities, not thousands.
  var visibleNow = groups.filter(function (g) { return !g.hidden; });

  function render() {
    var shown = shownGroups();
    var pages = Math.max(1, Math.ceil(shown.length / pageSize));
    page = Math.max(0, Math.min(page, pages - 1));
    var first = page * pageSize;
    var pageGroups = shown.slice(first, first + pageSize);
    var insights = 0;
    shown.forEach(function (g) { insights += cardsOf(g).filter(matches).length; });
    visibleNow.forEach(function (g) {
      g.hidden = true;
      cardsOf(g).forEach(function (c) { c.hidden = true; });
    });
    pageGroups.forEach(function (g) {
      list.appendChild(g);
      g.hidden = false;
      cardsOf(g).forEach(function (c) { c.hidden = !matches(c); });
    });
    visibleNow = pageGroups;
    byId("page-info").textContent = shown.length > pageSize ? "page " + (page + 1) + " of " + pages : "";
    byId("prev").disabled = page === 0;
    byId("next").disabled = page >= pages - 1;
    byId("shown").textContent = shown.length === 0
      ? "No Insight matches these filters."
      : "Showing activities " + (first + 1) + "\u2013" + Math.min(first + pageSize, shown.length) + " of " +
        shown.length + " (" + insights + " of " + cards.length + " Insights)";
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

  // A link to an Insight (#ep-...) or an activity (#act-...) opens the page that holds it,
  // clearing filters if needed.
  function showTarget() {
    var target = location.hash.length > 1 ? byId(decodeURIComponent(location.hash.slice(1))) : null;
    if (!target) { return; }
    var group = groups.indexOf(target) >= 0 ? target : null;
    if (!group && cards.indexOf(target) >= 0) {
      group = target.parentNode;
    }
    if (!group || groups.indexOf(group) < 0) { return; }
    var visible = cards.indexOf(target) >= 0 ? matches(target) : cardsOf(group).some(matches);
    if (!visible) {
      for (var key in filters) { filters[key].value = ""; }
      api.value = "";
    }
    page = Math.floor(shownGroups().indexOf(group) / pageSize);
    render();
    target.scrollIntoView();
  }
  window.addEventListener("hashchange", showTarget);

  render();
  showTarget();
  body.setAttribute("data-report-ready", "true");
})();
