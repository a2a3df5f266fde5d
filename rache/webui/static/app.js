// rache web: keeps the overview live. Every few seconds it reads /api/overview and puts
// its figures, the lag's level, the health verdict, the live pollers, the recent failures,
// the chart and the earliest jobs in the page. Text goes in as text (textContent),
// never as markup, so an id reads exactly as it is in Redis.
(function () {
  'use strict';

  var section = document.querySelector('[data-live]');
  if (!section) {
    return;
  }
  var api = section.getAttribute('data-live');
  var every = Math.max(500, Number(section.getAttribute('data-every')) * 1000);
  var root = api.slice(0, -'/api/overview'.length);

  function setField(name, value) {
    var nodes = section.querySelectorAll('[data-field="' + name + '"]');
    for (var i = 0; i < nodes.length; i++) {
      nodes[i].textContent = value;
    }
  }

  function drawChart(chart) {
    var svg = document.getElementById('chart');
    var rects = svg.querySelectorAll('.bars rect');
    chart.bars.forEach(function (bar, i) {
      var rect = rects[i];
      if (!rect) {
        return;
      }
      rect.setAttribute('y', bar.y);
      rect.setAttribute('height', bar.height);
      rect.querySelector('title').textContent = bar.title;
    });
    svg.setAttribute('aria-label', chart.label);
    setField('chart_label', chart.label);
    setField('chart_caption', chart.label);
    setField('peak', chart.peak);
  }

  function cell(text) {
    var td = document.createElement('td');
    td.textContent = text;
    return td;
  }

  function listJobs(jobs) {
    var body = document.getElementById('earliest');
    var rows = [];
    jobs.forEach(function (job) {
      var tr = document.createElement('tr');
      if (job.overdue) {
        tr.className = 'overdue';
      }
      tr.appendChild(cell(job.at));
      tr.appendChild(cell(job.relative));
      var td = document.createElement('td');
      if (job.url) {
        var link = document.createElement('a');
        link.href = root + job.url;
        link.textContent = job.id;
        td.appendChild(link);
      } else {
        td.textContent = job.id + ' (not UTF-8: no page)';
      }
      tr.appendChild(td);
      rows.push(tr);
    });
    if (!rows.length) {
      var empty = cell('No job is scheduled.');
      empty.colSpan = 3;
      var tr = document.createElement('tr');
      tr.appendChild(empty);
      rows.push(tr);
    }
    body.replaceChildren.apply(body, rows);
  }

  // A table's rows from a list of rows, each a list of cells {text, href, title, className};
  // none: one row saying the tbody's data-empty.
  function fillTable(body, rows) {
    var trs = rows.map(function (cells) {
      var tr = document.createElement('tr');
      cells.forEach(function (spec) {
        var td = document.createElement('td');
        if (spec.href) {
          var link = document.createElement('a');
          link.href = root + spec.href;
          link.textContent = spec.text;
          td.appendChild(link);
        } else {
          td.textContent = spec.text;
        }
        if (spec.title) {
          td.title = spec.title;
        }
        if (spec.className) {
          td.className = spec.className;
        }
        tr.appendChild(td);
      });
      return tr;
    });
    if (!trs.length) {
      var empty = cell(body.getAttribute('data-empty'));
      empty.colSpan = body.closest('table').querySelectorAll('thead th').length;
      var tr = document.createElement('tr');
      tr.appendChild(empty);
      trs.push(tr);
    }
    body.replaceChildren.apply(body, trs);
  }

  function listPollers(pollers) {
    fillTable(document.getElementById('pollers'), pollers.map(function (p) {
      return [
        {text: p.name},
        {text: p.kind},
        {text: p.host},
        {text: p.last_claim, title: p.last_claim_at},
        {text: p.handed_out, className: 'number'},
        {text: p.failures, className: p.failing ? 'number failing' : 'number'}
      ];
    }));
  }

  function listFailures(failures) {
    fillTable(document.getElementById('failures'), failures.map(function (f) {
      return [
        {text: f.failed_ago, title: f.failed_at},
        {text: f.url ? f.id : f.id + ' (not UTF-8: no page)', href: f.url},
        {text: f.occurrence, className: 'occurrence'},
        {text: f.claimed_by},
        {text: f.error, title: f.error_full, className: 'error'}
      ];
    }));
  }

  function showHealth(health) {
    var box = document.getElementById('health');
    box.className = 'health ' + (health.ok ? 'health-ok' : 'health-bad');
    document.getElementById('health-title').textContent = health.title;
    var items = health.problems.map(function (problem) {
      var li = document.createElement('li');
      var kind = document.createElement('strong');
      kind.textContent = problem.kind;
      li.appendChild(kind);
      li.appendChild(document.createTextNode(': ' + problem.message));
      return li;
    });
    var list = document.getElementById('problems');
    list.replaceChildren.apply(list, items);
  }

  function showLag(level) {
    var figure = document.getElementById('lag-figure');
    figure.className = 'lag lag-' + level;
    figure.setAttribute('data-level', level);
  }

  function show(data) {
    ['now_text', 'total', 'due', 'lag', 'lag_note', 'lag_at', 'next_due', 'next_due_at'].forEach(
      function (name) {
        setField(name, data[name]);
      }
    );
    showLag(data.lag_level);
    showHealth(data.health);
    listPollers(data.pollers);
    listFailures(data.failures);
    drawChart(data.chart);
    listJobs(data.jobs);
    setField('status', 'live, as of');
    section.classList.remove('stale');
  }

  function refresh() {
    fetch(api, {cache: 'no-store', headers: {Accept: 'application/json'}})
      .then(function (response) {
        return response.json().then(function (data) {
          if (!response.ok) {
            throw new Error(data.error || response.statusText);
          }
          return data;
        });
      })
      .then(show)
      .catch(function (error) {
        setField('status', 'not updated (' + error.message + '), last as of');
        section.classList.add('stale');
      })
      .then(function () {
        window.setTimeout(refresh, every);
      });
  }

  window.setTimeout(refresh, every);
})();
