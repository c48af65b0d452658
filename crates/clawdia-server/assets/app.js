// Clawdia web UI: sign-in, the /v1/ws chat (streamed replies, tool cards, approvals) and the Control panels.
// Untrusted text (model output, tool data, notifications, audit, brain pages, titles) only ever reaches the
// page through textContent / text nodes, via el() and renderMarkdown(); nothing here parses HTML.
'use strict';
(() => {
  // ---------------------------------------------------------------- DOM helpers
  const $ = (id) => document.getElementById(id);

  /** Builds an element; strings among the children become text nodes, attribute values are set verbatim. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    if (attrs) {
      for (const [key, value] of Object.entries(attrs)) {
        if (value == null || value === false) continue;
        if (key === 'class') node.className = value;
        else if (key === 'text') node.textContent = value;
        else if (key === 'onclick' || key === 'onsubmit' || key === 'onchange') node.addEventListener(key.slice(2), value);
        else node.setAttribute(key, value === true ? '' : String(value));
      }
    }
    for (const child of children.flat()) {
      if (child == null || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function fmtTime(value) {
    if (value == null || value === '') return '';
    let date;
    if (typeof value === 'number') date = new Date(value < 1e11 ? value * 1000 : value);
    else date = new Date(value);
    return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
  }

  function prettyJson(text) {
    if (typeof text !== 'string') return JSON.stringify(text, null, 2);
    try { return JSON.stringify(JSON.parse(text), null, 2); } catch { return text; }
  }

  /** Tool results reach the model inside trust markers (`<<<untrusted ID source=...>>>` ... `<<<end ID>>>`): not for people. */
  function cleanToolText(text) {
    return String(text ?? '').replace(/^<<<(?:untrusted [0-9a-f]+[^\n]*|end [0-9a-f]+)>>>\n?/gm, '').trim();
  }

  // The gateway continues a session after an approval with a message written for the model.
  const DECISION_MESSAGE = /^The owner (?:approved|denied) your `[^`\n]+` call \(request [0-9a-f]+\)/;

  function randomId() {
    const bytes = new Uint8Array(8);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  function fmtUsd(value) {
    if (typeof value !== 'number') return '';
    return '$' + (value < 0.01 && value > 0 ? value.toFixed(4) : value.toFixed(2));
  }

  // ---------------------------------------------------------------- safe markdown
  const SAFE_PROTOCOLS = new Set(['http:', 'https:', 'mailto:']);

  function safeLink(href, label) {
    let url;
    try { url = new URL(href); } catch { return null; }
    if (!SAFE_PROTOCOLS.has(url.protocol)) return null;
    const a = el('a', { href: url.href, rel: 'noopener noreferrer', target: '_blank' });
    if (typeof label === 'string') a.textContent = label; else a.append(label);
    return a;
  }

  // Inline tokens, tried left to right; at one position the first alternative listed wins.
  const INLINE = new RegExp([
    '(?<ticks>`+)(?<code>[\\s\\S]*?[^`])\\k<ticks>(?!`)',
    '\\[(?<label>[^\\]\\n]+)\\]\\(<?(?<href>[^)\\s>]+)>?(?:\\s+"[^"\\n]*")?\\)',
    '\\*\\*\\*(?=\\S)(?<strongEm>[\\s\\S]*?\\S)\\*\\*\\*',
    '\\*\\*(?=\\S)(?<strong>[\\s\\S]*?\\S)\\*\\*',
    '__(?=\\S)(?<strong2>[\\s\\S]*?\\S)__',
    '~~(?=\\S)(?<del>[\\s\\S]*?\\S)~~',
    '\\*(?=[^\\s*])(?<em>[\\s\\S]*?[^\\s*])\\*',
    '(?<![\\w])_(?=[^\\s_])(?<em2>[\\s\\S]*?[^\\s_])_(?![\\w])',
    '(?<url>https?:\\/\\/[^\\s<>"\'`]*[^\\s<>"\'`.,;:!?)\\]])',
    '\\\\(?<escaped>[\\\\`*_{}\\[\\]()#+\\-.!~>|])',
  ].join('|'));

  function wrapInline(tag, text, depth) {
    const node = el(tag);
    renderInline(node, text, depth + 1);
    return node;
  }

  function renderInline(parent, text, depth = 0) {
    let rest = text;
    while (rest) {
      const m = depth > 8 ? null : INLINE.exec(rest);
      if (!m) { appendTextWithBreaks(parent, rest); return; }
      if (m.index > 0) appendTextWithBreaks(parent, rest.slice(0, m.index));
      const g = m.groups;
      if (g.code !== undefined) parent.append(el('code', null, g.code.replace(/^ (.*) $/s, '$1')));
      else if (g.label !== undefined) {
        const label = document.createDocumentFragment();
        renderInline(label, g.label, depth + 1);
        parent.append(safeLink(g.href, label) || m[0]);
      } else if (g.strongEm !== undefined) {
        const strong = el('strong');
        strong.append(wrapInline('em', g.strongEm, depth));
        parent.append(strong);
      } else if (g.strong !== undefined || g.strong2 !== undefined) parent.append(wrapInline('strong', g.strong ?? g.strong2, depth));
      else if (g.del !== undefined) parent.append(wrapInline('del', g.del, depth));
      else if (g.em !== undefined || g.em2 !== undefined) parent.append(wrapInline('em', g.em ?? g.em2, depth));
      else if (g.url !== undefined) parent.append(safeLink(g.url, g.url) || g.url);
      else parent.append(g.escaped);
      rest = rest.slice(m.index + m[0].length);
    }
  }

  function appendTextWithBreaks(parent, text) {
    const lines = text.split('\n');
    lines.forEach((line, i) => {
      if (i > 0) parent.append(el('br'));
      if (line) parent.append(line);
    });
  }

  const RE_FENCE = /^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)[^`]*$/;
  const RE_HEADING = /^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
  const RE_HR = /^ {0,3}([-*_])(\s*\1){2,}\s*$/;
  const RE_QUOTE = /^ {0,3}> ?(.*)$/;
  const RE_UL = /^( {0,3})[-*+]\s+(.*)$/;
  const RE_OL = /^( {0,3})(\d{1,9})[.)]\s+(.*)$/;
  const RE_TABLE_RULE = /^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$/;

  function tableCells(line) {
    return line.trim().replace(/^\|/, '').replace(/\|$/, '').split('|').map((cell) => cell.trim());
  }

  function isBlockStart(line) {
    return RE_FENCE.test(line) || RE_HEADING.test(line) || RE_HR.test(line) || RE_QUOTE.test(line) ||
      RE_UL.test(line) || RE_OL.test(line);
  }

  /** Markdown → DocumentFragment of elements built with createElement and text nodes only. */
  function renderMarkdown(source, depth = 0) {
    const out = document.createDocumentFragment();
    const lines = String(source ?? '').replace(/\r\n?/g, '\n').split('\n');
    let i = 0;
    while (i < lines.length) {
      const line = lines[i];
      if (!line.trim()) { i++; continue; }
      let m;
      if ((m = RE_FENCE.exec(line))) {
        const fence = m[1];
        const body = [];
        i++;
        while (i < lines.length && !(lines[i].trim().startsWith(fence[0].repeat(fence.length)) && /^\s*[`~]+\s*$/.test(lines[i]))) body.push(lines[i++]);
        i++;
        const code = el('code', null, body.join('\n'));
        if (m[2]) code.setAttribute('data-lang', m[2]);
        out.append(el('pre', null, code));
      } else if ((m = RE_HEADING.exec(line))) {
        const h = el('h' + Math.min(6, m[1].length + 2));
        renderInline(h, m[2]);
        out.append(h);
        i++;
      } else if (line.includes('|') && i + 1 < lines.length && RE_TABLE_RULE.test(lines[i + 1]) && lines[i + 1].includes('-')) {
        const head = el('tr', null, tableCells(line).map((cell) => { const th = el('th'); renderInline(th, cell); return th; }));
        const body = el('tbody');
        i += 2;
        while (i < lines.length && lines[i].includes('|') && lines[i].trim()) {
          body.append(el('tr', null, tableCells(lines[i]).map((cell) => { const td = el('td'); renderInline(td, cell); return td; })));
          i++;
        }
        out.append(el('div', { class: 'table' }, el('table', null, el('thead', null, head), body)));
      } else if (RE_HR.test(line)) {
        out.append(el('hr'));
        i++;
      } else if (RE_QUOTE.test(line)) {
        const body = [];
        while (i < lines.length && lines[i].trim() && (m = RE_QUOTE.exec(lines[i]))) { body.push(m[1]); i++; }
        const quote = el('blockquote');
        quote.append(depth > 6 ? body.join('\n') : renderMarkdown(body.join('\n'), depth + 1));
        out.append(quote);
      } else if (RE_UL.test(line) || RE_OL.test(line)) {
        const ordered = !RE_UL.test(line);
        const itemRe = ordered ? RE_OL : RE_UL;
        const list = el(ordered ? 'ol' : 'ul');
        if (ordered) {
          const start = parseInt(RE_OL.exec(line)[2], 10);
          if (start !== 1) list.setAttribute('start', String(start));
        }
        while (i < lines.length && (m = itemRe.exec(lines[i]))) {
          const item = [ordered ? m[3] : m[2]];
          i++;
          // Continuation lines: indented, or plain text right below the item.
          while (i < lines.length) {
            const next = lines[i];
            if (!next.trim()) {
              if (i + 1 < lines.length && /^\s{2,}\S/.test(lines[i + 1])) { item.push(''); i++; continue; }
              break;
            }
            if (/^\s{2,}/.test(next)) { item.push(next.replace(/^\s{2,4}/, '')); i++; continue; }
            if (itemRe.test(next) || isBlockStart(next)) break;
            item.push(next); i++;
          }
          const li = el('li');
          const text = item.join('\n');
          if (depth < 6 && item.slice(1).some((l) => isBlockStart(l) || !l)) {
            const inner = renderMarkdown(text, depth + 1);
            // A leading paragraph stays inline: "- b" then a nested list reads as one item, not a spaced block.
            if (inner.firstChild && inner.firstChild.nodeName === 'P') inner.firstChild.replaceWith(...inner.firstChild.childNodes);
            li.append(inner);
          } else renderInline(li, text);
          list.append(li);
          while (i < lines.length && !lines[i].trim() && i + 1 < lines.length && itemRe.test(lines[i + 1])) i++;
        }
        out.append(list);
      } else {
        const para = [line];
        i++;
        while (i < lines.length && lines[i].trim() && !isBlockStart(lines[i])) para.push(lines[i++]);
        const p = el('p');
        renderInline(p, para.join('\n'));
        out.append(p);
      }
    }
    return out;
  }

  // ---------------------------------------------------------------- state
  const store = {
    get(key) { try { return sessionStorage.getItem('clawdia.' + key); } catch { return null; } },
    set(key, value) {
      try { if (value == null) sessionStorage.removeItem('clawdia.' + key); else sessionStorage.setItem('clawdia.' + key, String(value)); } catch { /* storage off */ }
    },
  };

  const S = {
    csrf: null,
    me: null,
    signedIn: false,
    agents: [],
    agent: store.get('agent'),
    session: store.get('session'),
    viewKey: 0, // changes whenever another chat is opened
    boot: store.get('boot'),
    seq: Number(store.get('seq')) || 0,
    firstWelcome: true,
    ws: null,
    open: false, // welcomed
    retryDelay: 500,
    retryTimer: null,
    pingTimer: null,
    pongTimer: null,
    everConnected: false,
    resyncing: false,
    buffered: [],
    turns: new Map(), // turn id -> turn record
    pending: new Map(), // client_id -> message sent, not yet accepted
    sendOnReconnect: false,
    restored: null, // text put back in the composer after a lost connection
    approvals: new Map(), // id -> Approval
    approvalCards: new Map(), // id -> Set of card elements
    notifications: [],
    unread: 0,
    view: 'chat',
    panel: 'approvals',
    sessionsTimer: null,
    loadingTranscript: false,
  };

  function saveCursor() { store.set('boot', S.boot); store.set('seq', S.seq); }
  function saveNav() { store.set('agent', S.agent); store.set('session', S.session); }

  // ---------------------------------------------------------------- HTTP
  class ApiError extends Error {
    constructor(status, type, message) { super(message); this.status = status; this.type = type; }
  }

  async function api(path, opts = {}) {
    const method = opts.method || 'GET';
    const init = { method, headers: {}, credentials: 'same-origin', cache: 'no-store' };
    if (method !== 'GET' && method !== 'HEAD' && S.csrf) init.headers['X-CSRF-Token'] = S.csrf;
    if (opts.json !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(opts.json);
    } else if (opts.body !== undefined) {
      init.headers['Content-Type'] = 'application/octet-stream';
      init.body = opts.body;
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (error) {
      throw new ApiError(0, 'network', 'Cannot reach the gateway (' + (error && error.message ? error.message : 'network error') + ').');
    }
    const text = res.status === 204 ? '' : await res.text();
    let data = null;
    if (text) { try { data = JSON.parse(text); } catch { data = null; } }
    if (!res.ok) {
      const message = data && data.error && data.error.message
        ? data.error.message
        : 'The gateway answered ' + res.status + (text && !data ? ': ' + text.slice(0, 200) : '.');
      if (res.status === 401 && !opts.keepSignedIn && S.signedIn) signOut('Signed out: ' + message);
      throw new ApiError(res.status, data && data.error ? data.error.type : null, message);
    }
    return data;
  }

  const q = (params) => {
    const usp = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v != null && v !== '') usp.set(k, String(v));
    const s = usp.toString();
    return s ? '?' + s : '';
  };

  // ---------------------------------------------------------------- sign-in
  function browserLabel() {
    const ua = navigator.userAgent;
    const browser = /Edg\//.test(ua) ? 'Edge' : /Firefox\//.test(ua) ? 'Firefox' : /Chrom/.test(ua) ? 'Chrome' : /Safari\//.test(ua) ? 'Safari' : 'Browser';
    const os = /Android/.test(ua) ? 'Android' : /iPhone|iPad/.test(ua) ? 'iOS' : /Windows/.test(ua) ? 'Windows' : /Mac OS X/.test(ua) ? 'macOS' : /Linux/.test(ua) ? 'Linux' : '';
    return os ? browser + ' on ' + os : browser;
  }

  function showSignin(message) {
    $('app').hidden = true;
    $('conn').hidden = true;
    $('signin').hidden = false;
    const error = $('signin-error');
    error.textContent = message || '';
    error.hidden = !message;
    $('signin-button').disabled = false;
    $('signin-input').focus();
  }

  async function login(secret) {
    const value = secret.trim();
    if (!value) { showSignin('Enter a pairing code or the gateway token.'); return; }
    // Pairing codes are short (ABCD-1234); the gateway token is a long random string.
    const body = value.length >= 24 ? { token: value } : { code: value.toUpperCase() };
    body.label = browserLabel();
    $('signin-button').disabled = true;
    try {
      const answer = await api('/v1/web/login', { method: 'POST', json: body, keepSignedIn: true });
      $('signin-input').value = '';
      enter(answer);
    } catch (error) {
      showSignin(error.message);
    }
  }

  function enter(answer) {
    S.csrf = answer.csrf;
    S.me = answer.session;
    S.signedIn = true;
    $('signin').hidden = true;
    $('app').hidden = false;
    startApp();
  }

  function signOut(message) {
    S.signedIn = false;
    S.csrf = null;
    S.open = false;
    $('app').dataset.live = 'no';
    clearTimeout(S.retryTimer); S.retryTimer = null;
    stopPing();
    if (S.ws) { const ws = S.ws; S.ws = null; ws.onclose = null; ws.onmessage = null; try { ws.close(); } catch { /* closed */ } }
    S.turns.clear(); S.pending.clear(); S.firstWelcome = true;
    $('transcript').replaceChildren();
    showSignin(message);
  }

  // ---------------------------------------------------------------- WebSocket
  function wsSend(message) {
    if (!S.ws || S.ws.readyState !== WebSocket.OPEN) return false;
    S.ws.send(JSON.stringify(message));
    return true;
  }

  function connect() {
    clearTimeout(S.retryTimer); S.retryTimer = null;
    if (S.ws || !S.signedIn) return;
    const url = (location.protocol === 'https:' ? 'wss:' : 'ws:') + '//' + location.host + '/v1/ws';
    let ws;
    try { ws = new WebSocket(url); } catch { scheduleReconnect(); return; }
    S.ws = ws;
    ws.onopen = () => {
      ws.send(JSON.stringify({ type: 'hello', boot: S.boot, since: S.boot ? S.seq : null }));
      startPing(ws);
    };
    ws.onmessage = (event) => {
      let message;
      try { message = JSON.parse(event.data); } catch { return; }
      if (S.ws === ws) onMessage(message);
    };
    ws.onclose = () => { if (S.ws === ws) lost(); };
  }

  function lost() {
    const ws = S.ws;
    S.ws = null;
    if (ws) { ws.onclose = null; ws.onmessage = null; try { ws.close(); } catch { /* already closed */ } }
    S.open = false;
    stopPing();
    $('app').dataset.live = 'no';
    if (!S.signedIn) return;
    $('conn').hidden = false;
    // A message the server never acknowledged goes back to the composer: kept, never sent twice.
    for (const pending of S.pending.values()) {
      if (pending.turn) continue; // its `user` event arrived: the server has it
      if (pending.bubble) pending.bubble.remove();
      const box = $('message');
      box.value = box.value ? pending.text + '\n' + box.value : pending.text;
      S.restored = { text: pending.text };
      setStatus('Not sent: the connection dropped. It is back in the box.', true);
    }
    S.pending.clear();
    updateBusy();
    scheduleReconnect();
  }

  function scheduleReconnect(now) {
    if (!S.signedIn || S.ws) return;
    if (S.retryTimer && !now) return;
    clearTimeout(S.retryTimer);
    const delay = now ? 0 : S.retryDelay;
    if (!now) S.retryDelay = Math.min(S.retryDelay * 2, 5000);
    S.retryTimer = setTimeout(reconnect, delay);
  }

  async function reconnect() {
    S.retryTimer = null;
    if (!S.signedIn || S.ws) return;
    try {
      const me = await api('/v1/web/me', { keepSignedIn: true });
      S.csrf = me.csrf; S.me = me.session;
    } catch (error) {
      if (error.status === 401) { signOut('Signed out: ' + error.message); return; }
      scheduleReconnect();
      return;
    }
    connect();
  }

  /** Pings; no pong within `wait` ms means the socket is dead (a phone that slept keeps a stale one). */
  function probe(ws, wait) {
    if (S.ws !== ws || ws.readyState !== WebSocket.OPEN) return;
    ws.send('{"type":"ping"}');
    clearTimeout(S.pongTimer);
    S.pongTimer = setTimeout(() => { if (S.ws === ws) lost(); }, wait);
  }

  function startPing(ws) {
    stopPing();
    S.pingTimer = setInterval(() => probe(ws, 10000), 25000);
  }

  function stopPing() { clearInterval(S.pingTimer); clearTimeout(S.pongTimer); S.pingTimer = null; S.pongTimer = null; }

  function onMessage(m) {
    if (typeof m.seq === 'number' && m.type !== 'welcome') {
      if (S.resyncing) { S.buffered.push(m); return; }
      if (m.seq <= S.seq) return;
      S.seq = m.seq;
      saveCursor();
      applyEvent(m);
      return;
    }
    switch (m.type) {
      case 'welcome': onWelcome(m); break;
      case 'accepted': onAccepted(m); break;
      case 'error': onServerError(m); break;
      case 'pong': clearTimeout(S.pongTimer); break;
      default: break;
    }
  }

  function onWelcome(m) {
    const fresh = S.firstWelcome || m.resync || m.boot !== S.boot;
    S.boot = m.boot;
    S.open = true;
    S.everConnected = true;
    S.retryDelay = 500;
    $('conn').hidden = true;
    if (fresh) {
      S.firstWelcome = false;
      S.seq = typeof m.seq === 'number' ? m.seq : 0;
      saveCursor();
      resync();
    } else {
      $('app').dataset.live = 'yes';
      flushComposer();
    }
  }

  async function resync() {
    S.resyncing = true;
    S.buffered = [];
    S.turns.clear();
    try {
      await Promise.all([loadTranscript(), loadNotifications(), refreshSessions()]);
      await loadApprovals();
    } finally {
      S.resyncing = false;
      const buffered = S.buffered;
      S.buffered = [];
      for (const m of buffered) {
        if (m.seq <= S.seq) continue;
        S.seq = m.seq;
        applyEvent(m);
      }
      saveCursor();
      if (S.view === 'control') showPanel(S.panel);
      $('app').dataset.live = 'yes'; // connected and up to date (a hook for tests, too)
      flushComposer();
    }
  }

  function onAccepted(m) {
    const pending = S.pending.get(m.client_id);
    if (!pending) return;
    S.pending.delete(m.client_id);
    let turn = S.turns.get(m.turn);
    if (!turn) turn = newTurn(m.turn, pending.agent, pending.session);
    turn.ours = true;
    turn.viewKey = pending.viewKey;
    turn.text = pending.text;
    if (!turn.bubble) turn.bubble = pending.bubble;
    else if (pending.bubble && pending.bubble !== turn.bubble) pending.bubble.remove();
    if (turn.bubble) { turn.bubble.classList.remove('pending'); turn.bubble.setAttribute('data-turn', m.turn); }
    updateBusy();
  }

  function onServerError(m) {
    if (m.client_id && S.pending.has(m.client_id)) {
      const pending = S.pending.get(m.client_id);
      S.pending.delete(m.client_id);
      if (pending.bubble) pending.bubble.remove();
      const box = $('message');
      if (!box.value) box.value = pending.text;
      setStatus(m.message, true);
      updateBusy();
      return;
    }
    if (m.id && S.approvalCards.has(m.id)) {
      for (const card of S.approvalCards.get(m.id)) {
        setCardStatus(card, m.message, true);
        for (const b of card.querySelectorAll('button')) b.disabled = false;
      }
      return;
    }
    setStatus(m.message, true);
  }

  // ---------------------------------------------------------------- chat: turns and rendering
  function newTurn(id, agent, session) {
    const turn = { id, agent, session, ours: false, viewKey: -1, done: false, bubble: null, block: null, seg: null, tools: new Map(), attemptStart: 0 };
    S.turns.set(id, turn);
    return turn;
  }

  function visible(turn) {
    if (turn.agent !== S.agent) return false;
    if (turn.session) return turn.session === S.session;
    return turn.ours && turn.viewKey === S.viewKey;
  }

  function nearBottom() { return window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 160; }
  function scrollDown(wasNear) { if (wasNear) window.scrollTo(0, document.documentElement.scrollHeight); }

  function addUserBubble(text, pending) {
    const wasNear = nearBottom();
    const bubble = el('div', { class: 'msg user' + (pending ? ' pending' : ''), 'data-role': 'user', 'data-testid': 'message' }, text);
    $('transcript').append(bubble);
    scrollDown(wasNear || pending);
    return bubble;
  }

  function assistantBlock() {
    return el('div', { class: 'msg assistant', 'data-role': 'assistant', 'data-testid': 'message' });
  }

  function ensureBlock(turn) {
    if (!turn.block) {
      turn.block = assistantBlock();
      turn.block.setAttribute('data-turn', turn.id);
      if (!turn.done) turn.block.setAttribute('aria-busy', 'true'); // read out once complete, not per delta
      $('transcript').append(turn.block);
      turn.attemptStart = 0;
    }
    return turn.block;
  }

  // A streaming reply is re-rendered as markdown at most every 80 ms (only its own segment), so a
  // burst of deltas costs one layout, and the text is visible while it streams.
  function renderSegment(seg) {
    clearTimeout(seg.timer);
    seg.timer = null;
    seg.renderedAt = performance.now();
    const wasNear = nearBottom();
    seg.replaceChildren(renderMarkdown(seg.raw));
    scrollDown(wasNear);
  }

  function renderSegmentSoon(seg) {
    if (seg.timer) return;
    const wait = 80 - (performance.now() - seg.renderedAt);
    if (wait <= 0) renderSegment(seg); else seg.timer = setTimeout(() => renderSegment(seg), wait);
  }

  function finishSegment(turn) {
    const seg = turn.seg;
    if (!seg) return;
    turn.seg = null;
    renderSegment(seg);
    seg.removeAttribute('data-testid');
  }

  function toolCard(name, args, id) {
    const output = el('pre', { class: 'output', 'data-testid': 'tool-output', hidden: true });
    const summary = el('div', { class: 'summary', 'data-testid': 'tool-summary' });
    const card = el('div', { class: 'card tool running', 'data-testid': 'tool-card', 'data-tool': name, 'data-call': id || '' },
      el('h4', null, el('span', { class: 'muted' }, 'Tool'), el('code', null, name)),
      el('details', null, el('summary', null, 'Arguments'), el('pre', { 'data-testid': 'tool-args' }, prettyJson(args || ''))),
      output, summary);
    card._output = output;
    card._summary = summary;
    return card;
  }

  function finishToolCard(card, isError, text) {
    card.classList.remove('running', 'ok', 'failed');
    card.classList.add(isError ? 'failed' : 'ok');
    card.setAttribute('data-state', isError ? 'error' : 'ok');
    const clean = cleanToolText(text);
    const short = clean.length > 300 ? clean.slice(0, 300) + '…' : clean;
    card._summary.replaceChildren(el('span', { class: isError ? 'error' : 'muted' }, isError ? 'Failed: ' : 'Result: '), short || '(no output)');
    if (clean.length > 300 && !card._output.textContent) { card._output.hidden = false; card._output.textContent = clean; }
  }

  function note(text, extra) { return el('p', { class: 'note', ...extra }, text); }

  function applyEvent(m) {
    switch (m.type) {
      case 'user': return onUserEvent(m);
      case 'turn': return onTurnEvent(m);
      case 'turn_done': return onTurnDone(m);
      case 'notification': return onNotification(m.notification);
      case 'approval': return onApproval(m.approval);
      default: return undefined;
    }
  }

  function onUserEvent(m) {
    let turn = S.turns.get(m.turn);
    if (!turn) {
      // Ours, if the `accepted` is still on its way: same text, same chat.
      let mine = null;
      for (const pending of S.pending.values()) {
        if (!pending.turn && pending.text === m.text && pending.agent === m.agent && pending.session === m.session) { mine = pending; break; }
      }
      turn = newTurn(m.turn, m.agent, m.session);
      if (mine) {
        mine.turn = m.turn;
        turn.ours = true;
        turn.viewKey = mine.viewKey;
        turn.bubble = mine.bubble;
      }
    }
    turn.text = m.text;
    if (!turn.bubble && visible(turn)) turn.bubble = addUserBubble(m.text, false);
    if (S.restored && S.restored.text === m.text) {
      // The message put back after a lost connection did reach the server.
      const box = $('message');
      if (box.value === m.text) box.value = '';
      S.restored = null;
    }
    updateBusy();
  }

  function onTurnEvent(m) {
    const ev = m.event || {};
    let turn = S.turns.get(m.turn);
    if (!turn) turn = newTurn(m.turn, m.agent, null);
    if (ev.type === 'started') {
      turn.session = ev.session;
      if (turn.ours && S.session === null && turn.viewKey === S.viewKey && turn.agent === S.agent) {
        S.session = ev.session;
        saveNav();
      }
      refreshSessionsSoon();
      updateBusy();
      return;
    }
    if (!visible(turn)) return;
    const wasNear = nearBottom();
    const block = ensureBlock(turn);
    switch (ev.type) {
      case 'text_delta': {
        if (!turn.seg) {
          turn.seg = el('div', { class: 'md', 'data-testid': 'streaming' });
          turn.seg.raw = '';
          turn.seg.renderedAt = 0;
          block.append(turn.seg);
        }
        turn.seg.raw += ev.text;
        renderSegmentSoon(turn.seg);
        break;
      }
      case 'discard': {
        finishSegment(turn);
        const nodes = Array.from(block.childNodes).slice(turn.attemptStart);
        for (const node of nodes) if (node.classList && node.classList.contains('md')) node.remove();
        block.append(note('Reply discarded: ' + (ev.reason || 'the model broke off') + '.'));
        turn.attemptStart = block.childNodes.length;
        break;
      }
      case 'tool_start': {
        finishSegment(turn);
        const card = toolCard(ev.name, ev.arguments, ev.id);
        turn.tools.set(ev.id, card);
        block.append(card);
        break;
      }
      case 'tool_output': {
        const card = turn.tools.get(ev.id);
        if (card && ev.text) { card._output.hidden = false; card._output.append(ev.text); }
        break;
      }
      case 'tool_end': {
        let card = turn.tools.get(ev.id);
        if (!card) { card = toolCard(ev.name, '', ev.id); block.append(card); }
        finishToolCard(card, ev.is_error, ev.summary);
        turn.attemptStart = block.childNodes.length;
        break;
      }
      case 'retry':
        block.append(note('Retrying ' + (ev.model || 'the model') + ' (' + (ev.reason || 'transient error') + ').'));
        break;
      case 'fallback':
        finishSegment(turn);
        block.append(note('Falling back from ' + ev.from + (ev.to ? ' to ' + ev.to : '') + ': ' + ev.reason));
        break;
      case 'approval_requested': {
        finishSegment(turn);
        const card = approvalCard({ id: ev.id, tool: ev.tool, reason: ev.reason, status: 'pending' });
        block.append(card);
        fetchApproval(ev.id);
        break;
      }
      case 'error':
        finishSegment(turn);
        turn.failed = true;
        block.append(el('p', { class: 'error', role: 'alert', 'data-testid': 'turn-error' }, ev.message || 'The turn failed.'));
        break;
      case 'end': {
        finishSegment(turn);
        const usage = ev.usage || {};
        const tokens = (usage.input_tokens || 0) + (usage.output_tokens || 0);
        const parts = [tokens + ' tokens'];
        if (typeof ev.cost_usd === 'number') parts.push(fmtUsd(ev.cost_usd));
        if (ev.model) parts.push(ev.model);
        block.append(el('p', { class: 'meta', 'data-testid': 'turn-meta' }, parts.join(' · ')));
        break;
      }
      default: break;
    }
    scrollDown(wasNear);
  }

  function onTurnDone(m) {
    let turn = S.turns.get(m.turn);
    if (!turn) turn = newTurn(m.turn, null, m.session);
    if (m.session) turn.session = m.session;
    turn.done = true;
    finishSegment(turn);
    if (turn.block) turn.block.removeAttribute('aria-busy');
    if (m.stopped && visible(turn)) ensureBlock(turn).append(note('Stopped.'));
    if (!m.ok && !m.stopped && !turn.failed && visible(turn)) {
      // The gateway sent no `error` event: say so rather than end silently.
      ensureBlock(turn).append(el('p', { class: 'error', role: 'alert', 'data-testid': 'turn-error' }, 'The turn failed; the gateway gave no reason (the audit log may say more).'));
    }
    if (!m.ok && !m.stopped && turn.ours && turn.text && !$('message').value && visible(turn)) {
      // A failed turn stores nothing: the message goes back to the box to try again.
      $('message').value = turn.text;
      setStatus('Your message is back in the box: send it again to retry.');
    }
    updateBusy();
    refreshSessionsSoon();
  }

  function runningTurn() {
    for (const turn of S.turns.values()) if (!turn.done && visible(turn)) return turn;
    return null;
  }

  function updateBusy() {
    const busy = runningTurn() || Array.from(S.pending.values()).some((p) => p.viewKey === S.viewKey);
    $('stop').hidden = !busy;
  }

  function setStatus(text, isError) {
    const status = $('chat-status');
    status.textContent = text || '';
    status.className = 'status' + (isError ? ' error' : '');
    if (isError) status.setAttribute('role', 'alert'); else status.setAttribute('role', 'status');
  }

  function send() {
    const box = $('message');
    const text = box.value;
    if (!text.trim()) return;
    if (!S.agent) { setStatus('No agent to talk to.', true); return; }
    if (!S.open || S.resyncing || S.loadingTranscript) {
      // Sent by flushComposer() once connected and the chat is (re)loaded.
      S.sendOnReconnect = true;
      setStatus(S.open ? 'Loading the chat; the message is sent in a moment.' : 'Not connected: the message stays here and is sent once the connection is back.');
      return;
    }
    if (runningTurn() || Array.from(S.pending.values()).some((p) => p.viewKey === S.viewKey)) {
      setStatus('Wait for the reply to finish, or press Stop.');
      return;
    }
    const clientId = randomId();
    const pending = { client_id: clientId, text, agent: S.agent, session: S.session, viewKey: S.viewKey, turn: null, bubble: null };
    if (!wsSend({ type: 'turn', client_id: clientId, agent: S.agent, session: S.session, message: text })) {
      S.sendOnReconnect = true;
      setStatus('Not connected: the message stays here and is sent once the connection is back.');
      return;
    }
    S.pending.set(clientId, pending);
    pending.bubble = addUserBubble(text, true);
    box.value = '';
    autosize();
    S.sendOnReconnect = false;
    S.restored = null;
    setStatus('');
    updateBusy();
  }

  function flushComposer() {
    if (S.sendOnReconnect && S.open && $('message').value.trim()) send();
  }

  function stop() {
    const turn = runningTurn();
    if (turn && wsSend({ type: 'stop', turn: turn.id })) setStatus('Stopping…');
  }

  // Transcript from HTTP: user bubbles; assistant text, tool calls and results grouped until the next user message.
  async function loadTranscript() {
    S.loadingTranscript = true;
    try {
      await fetchTranscript();
    } finally {
      S.loadingTranscript = false;
      if (!S.resyncing) flushComposer();
    }
  }

  async function fetchTranscript() {
    const transcript = $('transcript');
    if (!S.session) {
      transcript.replaceChildren();
      updateBusy();
      return;
    }
    const id = S.session;
    let data;
    try {
      data = await api('/v1/sessions/' + encodeURIComponent(id));
    } catch (error) {
      if (id !== S.session) return;
      transcript.replaceChildren();
      if (error.status === 404) {
        // Nothing was stored for it (its first turn failed), or it was removed.
        S.session = null;
        saveNav();
        setStatus('That chat is not stored; this is a new chat.');
      } else setStatus(error.message, true);
      return;
    }
    if (id !== S.session) return;
    const nodes = [];
    const cards = new Map();
    let block = null;
    for (const entry of data.messages || []) {
      const message = entry.message || {};
      if (message.role === 'user' && DECISION_MESSAGE.test(message.text || '')) {
        // Shown through the approval's own card and the tool card's result instead.
        block = null;
        nodes.push(note(DECISION_MESSAGE.exec(message.text)[0] + '.', { 'data-testid': 'decision-note' }));
      } else if (message.role === 'user') {
        block = null;
        nodes.push(el('div', { class: 'msg user', 'data-role': 'user', 'data-testid': 'message' }, message.text || ''));
      } else if (message.role === 'assistant') {
        if (!block) { block = assistantBlock(); nodes.push(block); }
        if (message.text) block.append(el('div', { class: 'md' }, renderMarkdown(message.text)));
        for (const call of message.tool_calls || []) {
          const card = toolCard(call.name, call.arguments, call.id);
          cards.set(call.id, card);
          block.append(card);
        }
      } else if (message.role === 'tool_result') {
        if (!block) { block = assistantBlock(); nodes.push(block); }
        let card = cards.get(message.call_id);
        if (!card) { card = toolCard(message.name, '', message.call_id); block.append(card); }
        finishToolCard(card, !!message.is_error, typeof message.content === 'string' ? message.content : JSON.stringify(message.content));
      }
    }
    transcript.replaceChildren(...nodes);
    setStatus('');
    updateBusy();
    window.scrollTo(0, document.documentElement.scrollHeight);
  }

  // ---------------------------------------------------------------- approvals
  function setCardStatus(card, text, isError) {
    const status = card.querySelector('.approval-status');
    status.textContent = text || '';
    status.className = 'approval-status' + (isError ? ' error' : ' muted');
    if (isError) status.setAttribute('role', 'alert'); else status.removeAttribute('role');
  }

  function approvalCard(a) {
    const noteId = 'note-' + randomId();
    const args = el('pre', { 'data-testid': 'approval-args' }, a.arguments !== undefined ? prettyJson(a.arguments) : 'Loading the arguments…');
    const noteInput = el('input', { id: noteId, type: 'text', placeholder: 'Note (optional)', 'data-testid': 'approval-note' });
    const approve = el('button', { type: 'button', class: 'primary', 'data-testid': 'approve' }, 'Approve');
    const deny = el('button', { type: 'button', class: 'danger', 'data-testid': 'deny' }, 'Deny');
    const card = el('div', { class: 'card approval', 'data-testid': 'approval-card', 'data-approval': a.id },
      el('h4', null, 'Approval needed:', el('code', null, a.tool || '?'), el('span', { class: 'muted' }, a.id)),
      a.reason ? el('p', { class: 'muted reason' }, a.reason) : null,
      a.summary ? el('p', { class: 'summary-line' }, a.summary) : null,
      args,
      el('div', { class: 'actions' }, el('label', { for: noteId, class: 'sr' }, 'Note'), noteInput, approve, deny),
      el('p', { class: 'approval-status muted' }));
    card._args = args;
    const decide = (yes) => {
      const message = { type: 'decide', id: a.id, approve: yes };
      if (noteInput.value.trim()) message.note = noteInput.value.trim();
      if (!wsSend(message)) { setCardStatus(card, 'Not connected; try again once the connection is back.', true); return; }
      approve.disabled = true; deny.disabled = true;
      setCardStatus(card, yes ? 'Approved; running…' : 'Denied.');
    };
    approve.addEventListener('click', () => decide(true));
    deny.addEventListener('click', () => decide(false));
    if (!S.approvalCards.has(a.id)) S.approvalCards.set(a.id, new Set());
    S.approvalCards.get(a.id).add(card);
    const known = S.approvals.get(a.id);
    updateApprovalCard(card, known || a);
    return card;
  }

  function updateApprovalCard(card, a) {
    if (a.arguments !== undefined) card._args.textContent = prettyJson(a.arguments);
    card.setAttribute('data-status', a.status || 'pending');
    if (a.status && a.status !== 'pending') {
      for (const b of card.querySelectorAll('button')) b.disabled = true;
      let text = 'Status: ' + a.status;
      if (a.note) text += ' — note: ' + a.note;
      if (a.result) text += ' — result: ' + a.result;
      setCardStatus(card, text);
    }
  }

  function approvalCardsFor(id) {
    const cards = S.approvalCards.get(id);
    if (!cards) return [];
    for (const card of cards) if (!card.isConnected) cards.delete(card);
    return Array.from(cards);
  }

  async function fetchApproval(id) {
    try {
      const known = S.approvals.has(id);
      const list = await api('/v1/approvals?pending=true');
      for (const a of list || []) S.approvals.set(a.id, a);
      const a = S.approvals.get(id);
      if (a) for (const card of approvalCardsFor(id)) updateApprovalCard(card, a);
      updateApprovalCount();
      if (!known && a && S.view === 'control' && S.panel === 'approvals') showPanel('approvals');
    } catch (error) {
      for (const card of approvalCardsFor(id)) setCardStatus(card, error.message, true);
    }
  }

  function onApproval(a) {
    if (!a || !a.id) return;
    S.approvals.set(a.id, a);
    for (const card of approvalCardsFor(a.id)) updateApprovalCard(card, a);
    showDecisionInToolCard(a);
    updateApprovalCount();
    if (S.view === 'control' && S.panel === 'approvals') showPanel('approvals');
  }

  /** A decided request's outcome replaces the "not run yet" result of its call's tool card. */
  function showDecisionInToolCard(a) {
    if (a.session !== S.session || a.status === 'pending' || a.status === 'approved') return;
    for (const card of document.querySelectorAll('#transcript [data-testid=tool-card]')) {
      if (card.getAttribute('data-call') !== a.call_id) continue;
      if (a.status === 'done' || a.status === 'failed') finishToolCard(card, a.status === 'failed', a.result || '');
      else finishToolCard(card, true, 'not run: the request was ' + a.status + (a.note ? ' (' + a.note + ')' : ''));
    }
  }

  async function loadApprovals() {
    try {
      const list = await api('/v1/approvals?limit=200');
      for (const a of list || []) S.approvals.set(a.id, a);
      updateApprovalCount();
      for (const a of list || []) showDecisionInToolCard(a);
      // Waiting requests of the open chat get their card at the end of the transcript.
      if (S.session) {
        for (const a of list || []) {
          if (a.session === S.session && a.status === 'pending' && approvalCardsFor(a.id).length === 0) {
            const block = assistantBlock();
            block.append(approvalCard(a));
            $('transcript').append(block);
          }
        }
      }
    } catch (error) {
      if (error.status !== 401) setStatus('Approvals: ' + error.message, true);
    }
  }

  function updateApprovalCount() {
    let n = 0;
    for (const a of S.approvals.values()) if (a.status === 'pending') n++;
    const badge = $('approvals-count');
    badge.textContent = String(n);
    badge.hidden = n === 0;
  }

  // ---------------------------------------------------------------- notifications
  async function loadNotifications() {
    try {
      const list = await api('/v1/notifications?limit=100');
      S.notifications = Array.isArray(list) ? list : [];
    } catch (error) {
      if (error.status !== 401) setStatus('Notifications: ' + error.message, true);
    }
  }

  function onNotification(n) {
    if (!n) return;
    if (S.notifications.some((x) => x.id === n.id)) return;
    S.notifications.unshift(n);
    // An approval request filed elsewhere (cron, the API) is announced by its alert: refresh the inbox.
    if (n.approval) fetchApproval(n.approval);
    if (S.view === 'control' && S.panel === 'notifications') {
      const list = $('notification-list');
      if (list) list.prepend(notificationItem(n));
    } else {
      S.unread++;
      updateBadge();
    }
  }

  function updateBadge() {
    const badge = $('badge');
    badge.textContent = S.unread > 99 ? '99+' : String(S.unread);
    badge.hidden = S.unread === 0;
    badge.setAttribute('aria-label', S.unread + ' unread notifications');
    document.title = S.unread ? '(' + S.unread + ') Clawdia' : 'Clawdia';
  }

  function notificationItem(n) {
    return el('li', { 'data-testid': 'notification', 'data-id': n.id },
      el('div', { class: 'item-title' + (n.severity >= 10 ? ' sev-hi' : '') }, n.title || n.kind || 'Notification'),
      el('div', { class: 'meta' }, [fmtTime(n.at ?? n.created_at), n.kind, n.severity != null ? 'severity ' + n.severity : '', n.agent ? 'agent ' + n.agent : ''].filter(Boolean).join(' · ')),
      n.body ? el('div', { class: 'stream' }, n.body) : null,
      n.approval ? el('button', { type: 'button', onclick: () => showPanel('approvals') }, 'Review the request') : null);
  }

  // ---------------------------------------------------------------- agents and sessions (chat side)
  async function loadAgents() {
    const select = $('agent');
    try {
      S.agents = (await api('/v1/agents')) || [];
    } catch (error) {
      setStatus('Agents: ' + error.message, true);
      return;
    }
    select.replaceChildren(...S.agents.map((a) => el('option', { value: a.name }, a.name)));
    if (!S.agents.some((a) => a.name === S.agent)) {
      S.agent = S.agents.length ? S.agents[0].name : null;
      S.session = null;
    }
    if (S.agent) select.value = S.agent;
    saveNav();
  }

  async function refreshSessions() {
    const list = $('session-list');
    if (!S.agent) { list.replaceChildren(); return; }
    try {
      const sessions = (await api('/v1/sessions' + q({ agent: S.agent, limit: 50 }))) || [];
      list.replaceChildren(...sessions.map((s) => sessionItem(s)));
      if (!sessions.length) list.append(el('li', { class: 'muted' }, 'No chats yet.'));
    } catch (error) {
      list.replaceChildren(el('li', { class: 'error', role: 'alert' }, error.message));
    }
  }

  function refreshSessionsSoon() {
    clearTimeout(S.sessionsTimer);
    S.sessionsTimer = setTimeout(refreshSessions, 400);
  }

  function sessionItem(s) {
    const item = el('li', { class: s.id === S.session ? 'active' : null, 'data-testid': 'session-item' },
      el('button', { type: 'button', class: 'link', onclick: () => openSession(s.id, s.agent) },
        el('span', { class: 'item-title' }, s.title || 'Untitled chat'),
        el('span', { class: 'meta' }, fmtTime(s.updated_at) + ' · ' + (s.message_count ?? 0) + ' messages' + (s.agent && s.agent !== S.agent ? ' · ' + s.agent : ''))));
    return item;
  }

  function openSession(id, agent) {
    if (agent && agent !== S.agent && S.agents.some((a) => a.name === agent)) {
      S.agent = agent;
      $('agent').value = agent;
    }
    S.session = id;
    S.viewKey++;
    saveNav();
    setStatus('');
    showView('chat');
    $('sessions-panel').hidden = true;
    $('sessions-toggle').setAttribute('aria-expanded', 'false');
    $('transcript').replaceChildren();
    updateBusy();
    loadTranscript().then(loadApprovals);
    refreshSessions();
  }

  function newChat() {
    S.session = null;
    S.viewKey++;
    saveNav();
    $('transcript').replaceChildren();
    setStatus('');
    updateBusy();
    refreshSessions();
    $('message').focus();
  }

  async function upload(file) {
    if (!file) return;
    const to = $('upload-to').value;
    setStatus('Uploading ' + file.name + '…');
    try {
      const answer = await api('/v1/upload' + q({ agent: S.agent, to, name: file.name }), { method: 'POST', body: file });
      if (answer && answer.slug) setStatus('Saved to the brain as ' + answer.slug);
      else if (answer && answer.path) setStatus('Uploaded to ' + answer.path);
      else setStatus('Uploaded.');
    } catch (error) {
      setStatus('Upload failed: ' + error.message, true);
    } finally {
      $('upload-input').value = '';
    }
  }

  // ---------------------------------------------------------------- views
  function showView(view) {
    S.view = view;
    $('view-chat').hidden = view !== 'chat';
    $('view-control').hidden = view !== 'control';
    $('composer').hidden = view !== 'chat';
    for (const tab of document.querySelectorAll('.tab')) {
      if (tab.dataset.view === view) tab.setAttribute('aria-current', 'page'); else tab.removeAttribute('aria-current');
    }
    if (view === 'control') showPanel(S.panel);
  }

  const PANELS = {
    approvals: panelApprovals,
    notifications: panelNotifications,
    agents: panelAgents,
    sessions: panelSessions,
    audit: panelAudit,
    cron: panelCron,
    brain: panelBrain,
    mcp: panelMcp,
    doctor: panelDoctor,
    telegram: panelTelegram,
    browsers: panelBrowsers,
  };
  let panelToken = 0;

  function showPanel(name) {
    if (!PANELS[name]) name = 'approvals';
    S.panel = name;
    for (const b of document.querySelectorAll('#subtabs button')) {
      if (b.dataset.panel === name) b.setAttribute('aria-current', 'true'); else b.removeAttribute('aria-current');
    }
    if (name === 'notifications') { S.unread = 0; updateBadge(); }
    const token = ++panelToken;
    const panel = $('panel');
    panel.replaceChildren(el('p', { class: 'muted' }, 'Loading…'));
    // Each panel builds its content, or throws an API error that is shown in place.
    Promise.resolve()
      .then(() => PANELS[name]())
      .then((nodes) => { if (token === panelToken) panel.replaceChildren(...[].concat(nodes).filter((node) => node != null)); })
      .catch((error) => {
        if (token === panelToken) panel.replaceChildren(el('p', { class: 'error', role: 'alert', 'data-testid': 'panel-error' }, error.message || String(error)));
      });
  }

  const errorLine = (error) => el('p', { class: 'error', role: 'alert' }, error.message || String(error));
  const empty = (text) => el('p', { class: 'muted' }, text);
  function kv(pairs) {
    const dl = el('dl', { class: 'kv' });
    for (const [k, v] of pairs) if (v != null && v !== '') dl.append(el('dt', null, k), el('dd', null, v));
    return dl;
  }

  async function panelApprovals() {
    const list = (await api('/v1/approvals?limit=100')) || [];
    for (const a of list) S.approvals.set(a.id, a);
    updateApprovalCount();
    list.sort((a, b) => (a.status === 'pending' ? 0 : 1) - (b.status === 'pending' ? 0 : 1) || (b.created_at || 0) - (a.created_at || 0));
    const items = list.map((a) => el('li', null,
      kv([['Agent', a.agent], ['Session', a.session], ['Asked', fmtTime(a.created_at)], ['Expires', a.status === 'pending' ? fmtTime(a.expires_at) : '']]),
      approvalCard(a),
      a.session ? el('button', { type: 'button', onclick: () => openSession(a.session, a.agent) }, 'Open the chat') : null));
    return [el('h2', null, 'Approvals'), items.length ? el('ul', { class: 'list' }, items) : empty('No approval requests.')];
  }

  async function panelNotifications() {
    await loadNotifications();
    const list = el('ul', { class: 'list', id: 'notification-list', 'data-testid': 'notification-list' }, S.notifications.map(notificationItem));
    return [el('h2', null, 'Notifications'), S.notifications.length ? null : empty('Nothing yet; new alerts appear here live.'), list];
  }

  async function panelAgents() {
    const agents = (await api('/v1/agents')) || [];
    const items = agents.map((a) => {
      const usage = a.usage_today || {};
      const budget = a.budget || {};
      let spend = (usage.tokens ?? 0) + ' tokens, ' + fmtUsd(usage.cost_usd ?? 0);
      const limits = [];
      if (budget.daily_usd != null) limits.push(fmtUsd(budget.daily_usd) + '/day');
      if (budget.daily_tokens != null) limits.push(budget.daily_tokens + ' tokens/day');
      spend += limits.length ? ' of ' + limits.join(', ') : ' (no budget)';
      return el('li', { 'data-testid': 'agent-item' },
        el('div', { class: 'item-title' }, a.name),
        a.description ? el('div', { class: 'muted' }, a.description) : null,
        kv([['Models', (a.models || []).join(' → ')], ['Tools', (a.tools || []).join(', ')], ['Today', spend]]));
    });
    return [el('h2', null, 'Agents'), items.length ? el('ul', { class: 'list' }, items) : empty('No agents.')];
  }

  function panelSessions() {
    const input = el('input', { type: 'search', id: 'session-search', placeholder: 'Words in any message', 'data-testid': 'session-search' });
    const results = el('ul', { class: 'list', 'data-testid': 'session-results' });
    const run = async () => {
      try {
        const sessions = (await api('/v1/sessions' + q({ q: input.value.trim(), limit: 50 }))) || [];
        results.replaceChildren(...sessions.map(sessionItem));
        if (!sessions.length) results.append(el('li', { class: 'muted' }, 'No matching chats.'));
      } catch (error) {
        results.replaceChildren(el('li', null, errorLine(error)));
      }
    };
    const form = el('form', { class: 'row', role: 'search', onsubmit: (e) => { e.preventDefault(); run(); } },
      el('label', { for: 'session-search', class: 'sr' }, 'Search chats'), input, el('button', { type: 'submit' }, 'Search'));
    run();
    return [el('h2', null, 'Sessions'), form, results];
  }

  function panelAudit() {
    const select = el('select', { id: 'audit-sev', 'data-testid': 'audit-severity' },
      [[0, 'All events'], [4, 'Severity 4+'], [8, 'Severity 8+'], [10, 'Severity 10+ (alerts)'], [13, 'Severity 13+']].map(([v, t]) => el('option', { value: v }, t)));
    select.value = '8';
    const results = el('ul', { class: 'list', 'data-testid': 'audit-list' });
    const run = async () => {
      try {
        const events = (await api('/v1/audit' + q({ min_severity: select.value, limit: 200 }))) || [];
        results.replaceChildren(...events.map((e) => el('li', { 'data-testid': 'audit-item' },
          el('div', { class: 'item-title' + (e.severity >= 10 ? ' sev-hi' : '') }, e.kind || 'event'),
          el('div', { class: 'meta' }, [fmtTime(e.at), 'severity ' + e.severity, e.agent ? 'agent ' + e.agent : ''].filter(Boolean).join(' · ')),
          el('div', null, e.message || ''))));
        if (!events.length) results.append(el('li', { class: 'muted' }, 'No events at this severity.'));
      } catch (error) {
        results.replaceChildren(el('li', null, errorLine(error)));
      }
    };
    select.addEventListener('change', run);
    run();
    return [el('h2', null, 'Audit log'), el('div', { class: 'row' }, el('label', { for: 'audit-sev' }, 'Show'), select), results];
  }

  function runLine(run) {
    if (!run) return 'never';
    return (run.status || '?') + ' · ' + fmtTime(run.started_at) + (run.finished_at ? ' → ' + fmtTime(run.finished_at) : '');
  }

  async function panelCron() {
    const jobs = (await api('/v1/cron')) || [];
    const items = jobs.map((job) => {
      const out = el('div', { class: 'cron-out' });
      const path = '/v1/cron/' + encodeURIComponent(job.name);
      const act = async (button, fn) => {
        button.disabled = true;
        try { await fn(); } catch (error) { out.replaceChildren(errorLine(error)); } finally { button.disabled = false; }
      };
      const runNow = el('button', { type: 'button' }, 'Run now');
      runNow.addEventListener('click', () => act(runNow, async () => {
        out.replaceChildren(empty('Running…'));
        const answer = await api(path + '/run', { method: 'POST' });
        const run = answer && answer.run;
        out.replaceChildren(...[el('div', null, runLine(run)), run && run.output ? el('pre', null, run.output) : null].filter(Boolean));
      }));
      const toggle = el('button', { type: 'button' }, job.enabled ? 'Disable' : 'Enable');
      toggle.addEventListener('click', () => act(toggle, async () => {
        await api(path + (job.enabled ? '/disable' : '/enable'), { method: 'POST' });
        showPanel('cron');
      }));
      const history = el('button', { type: 'button' }, 'History');
      history.addEventListener('click', () => act(history, async () => {
        const runs = (await api(path + '/runs?limit=20')) || [];
        out.replaceChildren(runs.length
          ? el('ul', { class: 'list' }, runs.map((r) => el('li', null, el('div', null, runLine(r)), r.output ? el('details', null, el('summary', null, 'Output'), el('pre', null, r.output)) : null)))
          : empty('No runs yet.'));
      }));
      return el('li', { 'data-testid': 'cron-item' },
        el('div', { class: 'item-title' }, job.name, job.enabled ? '' : ' (disabled)'),
        kv([['Schedule', job.schedule], ['Kind', job.kind + (job.agent ? ' · ' + job.agent : '')], ['Next run', job.next_run_at ? fmtTime(job.next_run_at) : '—'], ['Last run', runLine(job.last_run)]]),
        el('div', { class: 'actions' }, runNow, toggle, history), out);
    });
    return [el('h2', null, 'Cron jobs'), items.length ? el('ul', { class: 'list' }, items) : empty('No jobs; add one with `clawdia cron add`.')];
  }

  function panelBrain() {
    const input = el('input', { type: 'search', id: 'brain-search', placeholder: 'Search the brain', 'data-testid': 'brain-search' });
    const results = el('div', { 'data-testid': 'brain-results' });
    const openPage = async (slug) => {
      try {
        const page = await api('/v1/brain/pages/' + encodeURIComponent(slug));
        const back = el('button', { type: 'button' }, '← Results');
        back.addEventListener('click', run);
        results.replaceChildren(back, el('h3', null, page.title || page.slug),
          el('p', { class: 'meta' }, page.slug + (page.updated_at ? ' · ' + fmtTime(page.updated_at) : '')),
          el('div', { class: 'md', 'data-testid': 'brain-page' }, renderMarkdown(page.body || '')));
      } catch (error) {
        results.replaceChildren(errorLine(error));
      }
    };
    async function run() {
      const text = input.value.trim();
      if (!text) { results.replaceChildren(empty('Type words to search the pages.')); return; }
      try {
        const hits = (await api('/v1/brain/search' + q({ q: text, limit: 30 }))) || [];
        results.replaceChildren(hits.length
          ? el('ul', { class: 'list' }, hits.map((h) => el('li', null,
            el('button', { type: 'button', class: 'link', onclick: () => openPage(h.slug) },
              el('span', { class: 'item-title' }, h.title || h.slug), el('span', { class: 'meta' }, h.snippet || '')))))
          : empty('No pages match.'));
      } catch (error) {
        results.replaceChildren(errorLine(error));
      }
    }
    const form = el('form', { class: 'row', role: 'search', onsubmit: (e) => { e.preventDefault(); run(); } },
      el('label', { for: 'brain-search', class: 'sr' }, 'Search the brain'), input, el('button', { type: 'submit' }, 'Search'));
    run();
    return [el('h2', null, 'Brain'), form, results];
  }

  async function panelMcp() {
    const [servers, skills] = await Promise.all([
      api('/v1/mcp').catch((error) => error),
      api('/v1/skills').catch((error) => error),
    ]);
    const serverPart = servers instanceof Error ? errorLine(servers) : servers.length
      ? el('ul', { class: 'list' }, servers.map((s) => el('li', null, el('div', { class: 'item-title' }, s.name),
        kv([['State', s.state], ['Tools', String(s.tools ?? '')], ['Detail', s.detail]]))))
      : empty('No MCP servers configured.');
    const skillPart = skills instanceof Error ? errorLine(skills) : skills.length
      ? el('ul', { class: 'list' }, skills.map((s) => el('li', null, el('div', { class: 'item-title' }, s.name),
        kv([['Agent', s.agent], ['State', s.state], ['Triggers', (s.triggers || []).join(', ')], ['About', s.description]]))))
      : empty('No skills installed.');
    return [el('h2', null, 'MCP servers'), serverPart, el('h2', null, 'Skills'), skillPart];
  }

  async function panelDoctor() {
    const checks = (await api('/v1/doctor')) || [];
    return [el('h2', null, 'Doctor'), el('ul', { class: 'list' }, checks.map((c) => el('li', { 'data-testid': 'doctor-item' },
      el('span', { class: 'item-title st-' + c.status }, (c.status || '?').toUpperCase() + ' '), el('span', null, c.check),
      c.detail ? el('div', { class: 'muted' }, c.detail) : null)))];
  }

  async function panelTelegram() {
    const answer = (await api('/v1/telegram/pairings')) || {};
    if (!answer.configured) {
      return [el('h2', null, 'Telegram'), el('p', { class: 'muted', 'data-testid': 'pair-no-bot' }, 'No Telegram bot is configured ([channels.telegram] in clawdia.toml).')];
    }
    const requests = answer.requests || [];
    const items = requests.map((r) => {
      const who = (r.username ? '@' + r.username + ' ' : '') + '(telegram:' + r.user_id + ')';
      const approve = el('button', { type: 'button', 'data-testid': 'pair-approve' }, 'Let in');
      approve.addEventListener('click', async () => {
        approve.disabled = true;
        try {
          const done = await api('/v1/telegram/pairings/' + encodeURIComponent(r.code) + '/approve', { method: 'POST' });
          approve.replaceWith(el('span', { class: 'muted', 'data-testid': 'pair-done' }, done.told ? 'Let in, and told on Telegram.' : 'Let in (they could not be told: ' + (done.note || 'unknown') + ').'));
        } catch (error) {
          approve.disabled = false;
          approve.after(errorLine(error));
        }
      });
      return el('li', { 'data-testid': 'pair-item' },
        el('div', { class: 'item-title' }, who),
        kv([['Code', r.code], ['Asked', fmtTime(r.created_at)]]),
        el('div', { class: 'actions' }, approve));
    });
    return [el('h2', null, 'Telegram: people asking to talk to the bot'),
      items.length ? el('ul', { class: 'list' }, items) : el('p', { class: 'muted', 'data-testid': 'pair-none' }, 'Nobody is waiting.')];
  }

  async function panelBrowsers() {
    const sessions = (await api('/v1/web/sessions')) || [];
    const items = sessions.map((s) => {
      const revoke = el('button', { type: 'button', class: 'danger', 'data-testid': 'revoke' }, s.current ? 'Revoke (signs this browser out)' : 'Revoke');
      revoke.addEventListener('click', async () => {
        revoke.disabled = true;
        try {
          await api('/v1/web/sessions/' + encodeURIComponent(s.id) + '/revoke', { method: 'POST' });
          if (s.current) signOut('This browser was signed out.'); else showPanel('browsers');
        } catch (error) {
          revoke.disabled = false;
          revoke.after(errorLine(error));
        }
      });
      return el('li', { 'data-testid': 'browser-item' },
        el('div', { class: 'item-title' }, (s.label || s.id) + (s.current ? ' (this browser)' : '')),
        kv([['Signed in', fmtTime(s.created_at)], ['Last seen', fmtTime(s.last_seen_at)], ['Expires', fmtTime(s.expires_at)]]),
        el('div', { class: 'actions' }, revoke));
    });
    const logout = el('button', { type: 'button', 'data-testid': 'sign-out' }, 'Sign out');
    logout.addEventListener('click', async () => {
      try { await api('/v1/web/logout', { method: 'POST' }); signOut('Signed out.'); } catch (error) { logout.after(errorLine(error)); }
    });
    return [el('h2', null, 'Signed-in browsers'), el('ul', { class: 'list' }, items), el('div', { class: 'actions' }, logout)];
  }

  // ---------------------------------------------------------------- wiring
  function autosize() {
    const box = $('message');
    box.style.height = 'auto';
    box.style.height = Math.min(box.scrollHeight + 2, Math.round(window.innerHeight * 0.4)) + 'px';
  }

  async function startApp() {
    showView(S.view);
    updateBadge();
    await loadAgents();
    connect();
  }

  function bind() {
    $('signin-form').addEventListener('submit', (e) => { e.preventDefault(); login($('signin-input').value); });
    $('composer').addEventListener('submit', (e) => { e.preventDefault(); send(); });
    $('message').addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
    });
    $('message').addEventListener('input', () => {
      autosize();
      if (S.restored && $('message').value !== S.restored.text) S.restored = null;
    });
    $('stop').addEventListener('click', stop);
    $('new-chat').addEventListener('click', newChat);
    $('agent').addEventListener('change', () => { S.agent = $('agent').value; newChat(); });
    $('sessions-toggle').addEventListener('click', () => {
      const panel = $('sessions-panel');
      panel.hidden = !panel.hidden;
      $('sessions-toggle').setAttribute('aria-expanded', String(!panel.hidden));
      if (!panel.hidden) refreshSessions();
    });
    $('upload-input').addEventListener('change', () => upload($('upload-input').files[0]));
    for (const tab of document.querySelectorAll('.tab')) tab.addEventListener('click', () => showView(tab.dataset.view));
    for (const b of document.querySelectorAll('#subtabs button')) b.addEventListener('click', () => showPanel(b.dataset.panel));
    const wake = () => { if (S.ws) probe(S.ws, 4000); else scheduleReconnect(true); };
    window.addEventListener('online', wake);
    document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible') wake(); });
  }

  async function boot() {
    bind();
    const match = /(?:^#|&)code=([^&]*)/.exec(location.hash);
    if (match) {
      // The pairing code travels in the fragment only: take it out of the address bar, then sign in with it.
      history.replaceState(null, '', location.pathname + location.search);
      await login(decodeURIComponent(match[1]));
      return;
    }
    try {
      enter(await api('/v1/web/me', { keepSignedIn: true }));
    } catch (error) {
      showSignin(error.status === 401 ? '' : error.message);
    }
  }

  boot();
})();
