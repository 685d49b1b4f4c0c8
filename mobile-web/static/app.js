// qrlogin phone page: sign in on the phone, look up a computer's sign-in
// request, and confirm or cancel it. It talks only to its own origin and
// never holds a token: the phone's session is an HttpOnly cookie. Every value
// from the server is shown with textContent, never as HTML.
'use strict';
(() => {
  const T = {
    en: {
      title: 'Confirm sign-in · qrlogin', other: '中文', loading: 'Loading…',
      signinTitle: 'Sign in', signinLead: 'Sign in on this phone to approve sign-ins on your computer. This phone stays signed in.',
      username: 'Username', password: 'Password', signin: 'Sign in', signingIn: 'Signing in…',
      fillBoth: 'Enter your username and password.', wrongCreds: 'Wrong username or password.',
      codeTitle: 'Enter the code', codeLead: 'Type the 8-letter code shown on your computer.', code: 'Code',
      continue: 'Continue', badCode: 'The code has 8 letters, like BCDF-GHJK.',
      noCode: 'No sign-in request has this code. Check the code on your computer; it may have expired.',
      confirmTitle: 'Sign in on this computer?', computer: 'Name', platform: 'System', app: 'App',
      reportedTitle: 'Reported by the computer', unverified: 'Not verified', seenTitle: 'Seen by the server',
      clientTitle: 'App registered on this server', registered: 'Registered', clientId: 'App ID',
      removedClient: 'No longer registered', doneAppBody: 'You are signed in to {app}. You can close this page.',
      network: 'Network', netSame: 'Same network as this phone', netDifferent: 'Different network from this phone',
      netUnknown: "Can't check the network",
      netUnknownBody: "The server can't tell whether this computer is on your phone's network.",
      ip: 'IP address', asked: 'Requested', agoNow: 'just now', agoS: '{n} seconds ago', agoM1: '1 minute ago',
      agoM: '{n} minutes ago', unknownDevice: 'Unknown computer', signingAs: 'You are signing in as {name}.',
      confirmWarn: 'Confirm only if you are the one signing in on that computer right now. If someone sent you this link or code, tap Cancel.',
      netTitle: 'Different network', netBody: 'This computer is on a different network from your phone. If it is not the computer in front of you, tap Cancel.',
      expiresIn: 'Expires in {t}', confirm: 'Confirm sign-in', cancel: 'Cancel',
      doneTitle: 'Signed in', doneBody: 'You are signed in on {device}. You can close this page.',
      cancelledTitle: 'Sign-in cancelled', cancelledBody: 'The computer was not signed in. You can close this page.',
      expiredTitle: 'Request expired', expiredBody: 'This sign-in request has expired. Start again on your computer to get a new QR code.',
      usedTitle: 'Already used', usedBody: 'This sign-in request has already been used. To sign in again, start over on your computer.',
      elsewhereTitle: 'Scanned by another account', elsewhereBody: 'Another account already scanned this code. If that was not you, cancel the sign-in on your computer.',
      withdrawnTitle: 'Request withdrawn', withdrawnBody: 'The computer cancelled this sign-in request before you answered it. Nothing was signed in.',
      unknownTitle: 'Request not found', unknownBody: 'This link does not match any sign-in request. It may be mistyped or too old.',
      enterCode: 'Enter a code instead', errorTitle: 'Something went wrong', waitTitle: 'Please wait', retry: 'Try again',
      netErr: 'Cannot reach the server. Check your connection and try again.',
      rateLimited: 'Too many attempts. Please wait {n} seconds and try again.',
      rateLimited1: 'Too many attempts. Please wait 1 second and try again.',
      unavailable: 'The server is busy. Please try again in a moment.', oops: 'Something unexpected happened. Please try again.',
      signedInAs: 'Signed in as {name}.', notYou: 'Not you?', signout: 'Sign out',
      devicesTitle: 'Signed-in devices', devicesLead: 'Everything signed in to your account. Sign out anything you do not recognise.',
      kDesktop: 'Computer', kPhone: 'Phone', kApp: 'App', unknownPhone: 'Unknown phone', unknownApp: 'Unknown app',
      onPlatform: '{app} on {platform}', thisPhone: 'This phone', newTag: 'New', noDevices: 'Nothing is signed in.',
      lastActive: 'Last active', lastIp: 'IP address', signedInAt: 'Signed in', signinIp: 'Sign-in IP',
      signoutAll: 'Sign out everywhere', back: 'Back',
      askOne: 'Sign out {name}?', askOneBody: 'It is signed out at once and has to sign in again to be used.',
      askMe: 'Sign out this phone?', askMeBody: 'To approve sign-ins again, you will have to sign in on this phone.',
      askAll: 'Sign out everywhere?', askAllBody: 'Every computer, app and phone signed in to your account is signed out at once, this phone included.',
      outOne: '{name} was signed out.', goneOne: '{name} was already signed out. The list is up to date.',
      outMe: 'This phone was signed out.', outAll: 'You signed out everywhere, this phone included.',
      outElse: 'This phone is no longer signed in. Please sign in again.',
    },
    'zh-CN': {
      title: '确认登录 · qrlogin', other: 'English', loading: '正在加载…',
      signinTitle: '登录', signinLead: '在这部手机上登录，即可批准电脑上的登录请求。此手机会保持登录状态。',
      username: '用户名', password: '密码', signin: '登录', signingIn: '正在登录…',
      fillBoth: '请输入用户名和密码。', wrongCreds: '用户名或密码错误。',
      codeTitle: '输入代码', codeLead: '请输入电脑上显示的 8 位字母代码。', code: '代码',
      continue: '继续', badCode: '代码由 8 个字母组成，例如 BCDF-GHJK。',
      noCode: '没有与此代码对应的登录请求。请核对电脑上显示的代码，它可能已过期。',
      confirmTitle: '要在这台电脑上登录吗？', computer: '名称', platform: '系统', app: '应用',
      reportedTitle: '电脑自报的信息', unverified: '未经验证', seenTitle: '服务器看到的信息',
      clientTitle: '在此服务器上登记的应用', registered: '已登记', clientId: '应用 ID',
      removedClient: '已不再登记', doneAppBody: '你已登录 {app}。现在可以关闭此页面。',
      network: '网络', netSame: '与这部手机在同一网络', netDifferent: '与这部手机不在同一网络',
      netUnknown: '无法检查网络',
      netUnknownBody: '服务器无法判断这台电脑是否与你的手机在同一网络。',
      ip: 'IP 地址', asked: '请求时间', agoNow: '刚刚', agoS: '{n} 秒前', agoM1: '1 分钟前',
      agoM: '{n} 分钟前', unknownDevice: '未知电脑', signingAs: '你将以 {name} 的身份登录。',
      confirmWarn: '只有当你本人此刻正在那台电脑上登录时才确认。如果这个链接或代码是别人发给你的，请点“取消”。',
      netTitle: '不在同一网络', netBody: '这台电脑与你的手机不在同一网络。如果它不是你面前的电脑，请点“取消”。',
      expiresIn: '{t} 后过期', confirm: '确认登录', cancel: '取消',
      doneTitle: '已登录', doneBody: '你已在 {device} 上登录。现在可以关闭此页面。',
      cancelledTitle: '已取消登录', cancelledBody: '电脑没有登录。现在可以关闭此页面。',
      expiredTitle: '请求已过期', expiredBody: '此登录请求已过期。请在电脑上重新开始，获取新的二维码。',
      usedTitle: '请求已被使用', usedBody: '此登录请求已被使用。如需再次登录，请在电脑上重新开始。',
      elsewhereTitle: '已被其他账号扫描', elsewhereBody: '另一个账号已扫描此二维码。如果不是你本人，请在电脑上取消登录。',
      withdrawnTitle: '请求已撤回', withdrawnBody: '在你确认之前，电脑已取消此登录请求。没有任何设备登录。',
      unknownTitle: '找不到请求', unknownBody: '此链接没有对应的登录请求，可能输入有误或已过期太久。',
      enterCode: '改为输入代码', errorTitle: '出错了', waitTitle: '请稍候', retry: '重试',
      netErr: '无法连接服务器。请检查网络后重试。',
      rateLimited: '尝试次数过多。请等待 {n} 秒后再试。',
      rateLimited1: '尝试次数过多。请等待 1 秒后再试。',
      unavailable: '服务器繁忙，请稍后再试。', oops: '发生意外错误，请重试。',
      signedInAs: '当前账号：{name}。', notYou: '不是你？', signout: '退出登录',
      devicesTitle: '已登录的设备', devicesLead: '以下是登录了你账号的所有设备。如有你不认识的，请让它退出登录。',
      kDesktop: '电脑', kPhone: '手机', kApp: '应用', unknownPhone: '未知手机', unknownApp: '未知应用',
      onPlatform: '{platform} 上的 {app}', thisPhone: '本机', newTag: '新登录', noDevices: '没有已登录的设备。',
      lastActive: '最近使用', lastIp: 'IP 地址', signedInAt: '登录时间', signinIp: '登录时的 IP',
      signoutAll: '退出所有设备', back: '返回',
      askOne: '要让 {name} 退出登录吗？', askOneBody: '它会立即退出登录，需要重新登录才能继续使用。',
      askMe: '要让这部手机退出登录吗？', askMeBody: '之后需要在这部手机上重新登录，才能再批准登录请求。',
      askAll: '要退出所有设备吗？', askAllBody: '登录了你账号的所有电脑、应用和手机都会立即退出登录，包括这部手机。',
      outOne: '{name} 已退出登录。', goneOne: '{name} 此前已退出登录。列表已更新。',
      outMe: '这部手机已退出登录。', outAll: '你已退出所有设备的登录，包括这部手机。',
      outElse: '这部手机已不再登录，请重新登录。',
    },
  };
  // Result screens: icon style, icon, and the action button (if any).
  const R = {
    done: ['ok', 'i-ok'], cancelled: ['bad', 'i-no'], expired: ['', 'i-time'], used: ['', 'i-info'],
    withdrawn: ['', 'i-no'], elsewhere: ['bad', 'i-warn'], unknown: ['', 'i-info', 'enterCode'], error: ['bad', 'i-warn', 'retry'],
  };
  // Where a session's reported state sends the page when it is not ours to act on.
  const ENDED = { cancelled: 'withdrawn', expired: 'expired', confirmed: 'used', consumed: 'used' };
  // A request this phone cancelled is "cancelled", not "withdrawn by the
  // computer", when it is opened again.
  const mine = () => 'qrlogin-cancelled-' + S.id;
  function ended(status) {
    let here = null;
    try {
      here = sessionStorage.getItem(mine());
    } catch {}
    return status === 'cancelled' && here ? 'cancelled' : ENDED[status];
  }
  const SCREENS = ['loading', 'signin', 'code', 'confirm', 'result', 'devices'];
  const $ = (id) => document.getElementById(id);
  const S = { lang: 'en', id: '', user: null, info: null, skew: 0, screen: 'loading', result: '', msg: null, err: {}, busy: false,
    note: '', devices: null, dev: {}, drawn: '', back: null, pushed: false, pending: null };

  const t = (k) => (T[S.lang] && T[S.lang][k]) || T.en[k] || k;
  const name = (u) => u.display_name || u.username || '';
  const now = () => Date.now() + S.skew;

  // fmt is message k with each {key} replaced by vals[key], as a string.
  const fmt = (k, vals) => t(k).replace(/\{(\w+)\}/g, (_, x) => String(vals[x] ?? ''));

  // fill sets el's text to message k, with each {key} replaced by vals[key]
  // as a text node (in <strong> when strong is set).
  function fill(el, k, vals, strong) {
    el.replaceChildren();
    for (const part of t(k).split(/(\{\w+\})/)) {
      const m = /^\{(\w+)\}$/.exec(part);
      if (!m) {
        if (part) el.append(part);
        continue;
      }
      const v = String(vals[m[1]] ?? '');
      if (strong) {
        const b = document.createElement('strong');
        b.textContent = v;
        el.append(b);
      } else {
        el.append(v);
      }
    }
  }

  async function api(method, url, body) {
    const o = { method, credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' } };
    if (body) {
      o.headers['Content-Type'] = 'application/json';
      o.body = JSON.stringify(body);
    }
    let r;
    try {
      r = await fetch(url, o);
    } catch {
      return { status: 0, body: {} };
    }
    // Count down by the server's clock when the phone's is clearly off.
    const d = Date.parse(r.headers.get('Date') || '');
    if (d) {
      const skew = d + 500 - Date.now();
      S.skew = Math.abs(skew) > 2000 ? skew : 0;
    }
    let b = {};
    try {
      b = (await r.json()) || {};
    } catch {}
    return { status: r.status, body: b, retry: parseInt(r.headers.get('Retry-After'), 10) || 0 };
  }

  const path = (what) => '/api/v1/login-sessions/' + encodeURIComponent(S.id) + (what ? '/' + what : '');

  function show(screen) {
    S.screen = screen;
    S.busy = false;
    render();
    if (screen === 'signin') ($('u').value ? $('p') : $('u')).focus();
    if (screen === 'code') $('c').focus();
  }

  function result(kind, msg) {
    S.result = kind;
    S.msg = msg || null;
    show('result');
  }

  function render() {
    document.documentElement.lang = S.lang;
    document.title = t('title');
    for (const el of document.querySelectorAll('[data-t]')) el.textContent = t(el.dataset.t);
    $('lang').textContent = t('other');
    $('lang').lang = S.lang === 'en' ? 'zh-CN' : 'en';
    for (const s of SCREENS) $('s-' + s).hidden = S.screen !== s;
    for (const f of ['signin', 'code', 'confirm']) {
      const e = $('e-' + f), v = S.err[f];
      e.hidden = !v;
      if (v) fill(e, v.k, v);
    }
    if (S.busy && S.screen === 'signin') $('b-signin').textContent = t('signingIn');
    for (const b of document.querySelectorAll('button.btn')) b.disabled = S.busy;
    $('who').hidden = !S.user || (S.screen !== 'code' && S.screen !== 'confirm');
    $('to-devices').hidden = S.screen !== 'code';
    if (S.user) fill($('who-name'), 'signedInAs', { name: name(S.user) }, true);
    $('m-signin').hidden = !S.note;
    $('m-signin').textContent = t(S.note);
    if (S.screen === 'confirm') renderConfirm();
    if (S.screen === 'result') renderResult();
    if (S.screen === 'devices') renderDevices();
    if ($('dlg').open) renderAsk();
  }

  function renderConfirm() {
    const d = S.info.device || {};
    // An OAuth app: its name is the one the server's administrator
    // registered, so it is shown apart from what the computer reports
    // (which, for such an app, is nothing).
    const c = S.info.client;
    $('sec-client').hidden = !c;
    if (c) {
      $('c-name').textContent = c.name || t('removedClient');
      $('c-id').textContent = c.id;
    }
    $('sec-reported').hidden = !!c && !d.name && !d.platform && !d.app_name;
    $('d-name').textContent = d.name || t('unknownDevice');
    $('d-platform').textContent = d.platform || '—';
    $('d-app').textContent = d.app_name || '—';
    $('d-ip').textContent = d.ip || '—';
    // Anything but same/different is "can't check".
    const net = S.info.network === 'same' || S.info.network === 'different' ? S.info.network : 'unknown';
    $('netwarn').hidden = net !== 'different';
    $('netinfo').hidden = net !== 'unknown';
    $('d-net').textContent = t({ same: 'netSame', different: 'netDifferent', unknown: 'netUnknown' }[net]);
    $('d-net').className = net === 'different' ? 'bad' : '';
    fill($('as'), 'signingAs', { name: name(S.user) }, true);
    tick();
  }

  function renderResult() {
    const [cls, icon, action] = R[S.result];
    $('r-icon').className = 'big ' + cls;
    $('r-use').setAttribute('href', '#' + icon);
    $('r-title').textContent = t(S.msg && S.msg.k.startsWith('rateLimited') ? 'waitTitle' : S.result + 'Title');
    if (S.result === 'error') fill($('r-body'), S.msg.k, S.msg);
    else if (S.result === 'done' && S.info && S.info.client && S.info.client.name) fill($('r-body'), 'doneAppBody', { app: S.info.client.name }, true);
    else fill($('r-body'), S.result + 'Body', { device: (S.info && S.info.device && S.info.device.name) || t('unknownDevice') }, true);
    $('r-action').hidden = !action;
    if (action) $('r-action').textContent = t(action);
    $('r-devices').hidden = !S.user || S.result === 'error';
  }

  // Devices: every live sign-in of the account (GET /api/v1/devices).
  // Per kind: icon, label, and the name of one that reported none.
  const KIND = { desktop: ['i-desktop', 'kDesktop', 'unknownDevice'], phone: ['i-phone', 'kPhone', 'unknownPhone'], app: ['i-app', 'kApp', 'unknownApp'] };
  const kind = (d) => KIND[d.kind] || KIND.desktop;

  function devName(d) {
    if (d.name) return d.name;
    if (d.kind === 'app' && d.app_name) return d.app_name;
    if (d.app_name && d.platform) return fmt('onPlatform', { app: d.app_name, platform: d.platform });
    return t(kind(d)[2]);
  }

  function when(iso, style) {
    const ms = Date.parse(iso || '');
    const el = document.createElement('time');
    if (!ms) {
      el.textContent = '—';
      return el;
    }
    el.dateTime = new Date(ms).toISOString();
    const abs = new Intl.DateTimeFormat(S.lang, { dateStyle: 'medium', timeStyle: 'short' }).format(ms);
    const s = Math.max(0, (now() - ms) / 1000), rel = new Intl.RelativeTimeFormat(S.lang, { numeric: 'auto' });
    el.textContent =
      style === 'abs' || s >= 30 * 86400 ? abs
        : s < 60 ? t('agoNow')
          : s < 3600 ? rel.format(-Math.floor(s / 60), 'minute')
            : s < 86400 ? rel.format(-Math.floor(s / 3600), 'hour') : rel.format(-Math.floor(s / 86400), 'day');
    if (el.textContent !== abs) el.title = abs;
    return el;
  }

  function deviceItem(d, i) {
    const li = $('t-device').content.firstElementChild.cloneNode(true);
    const [icon, label] = kind(d), title = devName(d);
    li.querySelector('use').setAttribute('href', '#' + icon);
    const h = li.querySelector('h2');
    h.id = 'dev-' + i;
    h.textContent = title;
    li.querySelector('.dev-title p').textContent = [t(label), d.platform, d.app_name].filter((x) => x && !title.includes(x)).join(' · ');
    const [cur, fresh] = li.querySelectorAll('.tag');
    cur.textContent = t('thisPhone');
    cur.hidden = !d.current;
    fresh.textContent = t('newTag');
    fresh.hidden = !d.new;
    li.querySelector('.tags').hidden = !d.current && !d.new;
    const dl = li.querySelector('dl');
    const row = (k, v, mono) => {
      const dt = document.createElement('dt'), dd = document.createElement('dd');
      dt.textContent = t(k);
      if (mono) dd.className = 'mono';
      dd.append(v);
      dl.append(dt, dd);
    };
    row('lastActive', when(d.last_used_at));
    row('lastIp', d.last_ip || d.ip || '—', true);
    row('signedInAt', when(d.created_at, 'abs'));
    if (d.ip && d.last_ip && d.ip !== d.last_ip) row('signinIp', d.ip, true);
    const b = li.querySelector('button');
    b.textContent = t('signout');
    b.setAttribute('aria-describedby', h.id);
    b.addEventListener('click', () => ask(d));
    return li;
  }

  function renderDevices() {
    const D = S.dev;
    $('l-devices').hidden = !D.loading || !!S.devices;
    $('m-devices').hidden = !D.msg;
    if (D.msg) fill($('m-devices'), D.msg.k, D.msg);
    $('e-devices').hidden = !D.err;
    if (D.err) fill($('e-devices-text'), D.err.k, D.err);
    // Rebuilt only when the list or the language changed, so that focus
    // stays where it is.
    const key = S.lang + JSON.stringify(S.devices);
    if (key === S.drawn) return;
    S.drawn = key;
    const ul = $('devices');
    ul.replaceChildren(...(S.devices || []).map(deviceItem));
    if (S.devices && !S.devices.length) {
      const li = document.createElement('li');
      li.className = 'muted';
      li.textContent = t('noDevices');
      ul.append(li);
    }
  }

  async function loadDevices(msg) {
    S.dev = { loading: true, msg };
    render();
    const r = await api('GET', '/api/v1/devices');
    S.dev.loading = false;
    if (r.status === 401) return signedOut('outElse');
    if (r.status === 200 && Array.isArray(r.body.devices)) S.devices = r.body.devices;
    else S.dev.err = problem(r); // the list shown stays
    if (S.screen === 'devices') render();
  }

  // devices opens the list; back returns to the screen it came from.
  function devices(push) {
    if (S.screen !== 'devices') S.back = { screen: S.screen, result: S.result, msg: S.msg };
    if (push) history.pushState(null, '', '#devices');
    S.pushed = push;
    show('devices');
    $('h-devices').focus();
    loadDevices();
  }

  function back() {
    const b = S.back;
    S.back = null;
    S.pushed = false;
    if (b && b.screen === 'result') return result(b.result, b.msg);
    if (b && b.screen === 'code') return show('code');
    next();
  }

  // ask opens the confirm step of signing out device d, or of signing
  // out everywhere when d is null.
  function ask(d) {
    S.pending = d;
    S.err.dlg = null;
    $('dlg').showModal();
    render();
  }

  function renderAsk() {
    const d = S.pending;
    $('dlg-title').textContent = !d ? t('askAll') : d.current ? t('askMe') : fmt('askOne', { name: devName(d) });
    $('dlg-body').textContent = t(!d ? 'askAllBody' : d.current ? 'askMeBody' : 'askOneBody');
    $('dlg-ok').textContent = t(d ? 'signout' : 'signoutAll');
    $('e-dlg').hidden = !S.err.dlg;
    if (S.err.dlg) fill($('e-dlg'), S.err.dlg.k, S.err.dlg);
  }

  async function signOutDevice() {
    if (S.busy) return;
    const d = S.pending;
    S.busy = true;
    S.err.dlg = null;
    render();
    const r = d ? await api('DELETE', '/api/v1/devices/' + encodeURIComponent(d.id)) : await api('POST', '/api/v1/auth/logout-all');
    S.busy = false;
    if (r.status === 401) return signedOut('outElse');
    if (r.status === 204 && (!d || d.current)) return signedOut(d ? 'outMe' : 'outAll');
    if (d && (r.status === 204 || r.status === 404)) {
      $('dlg').close();
      loadDevices({ k: r.status === 204 ? 'outOne' : 'goneOne', name: devName(d) });
      return $('h-devices').focus();
    }
    // Nothing changed: the dialog stays, with the reason, to try again.
    S.err.dlg = problem(r);
    render();
    $('dlg-ok').focus();
  }

  // signedOut shows the sign-in form, saying why this phone is signed out.
  function signedOut(k) {
    if ($('dlg').open) $('dlg').close();
    S.user = S.info = S.devices = null;
    S.note = k;
    S.pushed = false;
    history.replaceState(null, '', location.pathname);
    show('signin');
  }

  // tick runs every second: the countdown, the "requested … ago" line, and
  // the switch to the expired screen.
  function tick() {
    if (S.screen !== 'confirm') return;
    const exp = Date.parse(S.info.expires_at), made = Date.parse((S.info.device || {}).created_at || '');
    const left = Math.ceil((exp - now()) / 1000);
    if (!(left > 0)) return result('expired');
    fill($('left'), 'expiresIn', { t: Math.floor(left / 60) + ':' + String(left % 60).padStart(2, '0') });
    const bar = $('bar');
    bar.hidden = !made;
    if (made) bar.value = Math.min(1, left / Math.max(1, (exp - made) / 1000));
    bar.classList.toggle('low', left <= 15);
    const ago = Math.max(0, Math.round((now() - made) / 1000)), min = Math.floor(ago / 60);
    const asked = $('d-asked');
    if (!made) asked.textContent = '—';
    else if (ago < 5) asked.textContent = t('agoNow');
    else if (ago < 60) fill(asked, 'agoS', { n: ago });
    else fill(asked, min === 1 ? 'agoM1' : 'agoM', { n: min });
  }

  // poll notices the computer withdrawing the request, or it ending in
  // another way, while the phone shows it.
  async function poll() {
    if (S.screen !== 'confirm' || S.busy || document.hidden) return;
    const r = await api('GET', path());
    if (S.screen !== 'confirm' || S.busy) return;
    if (r.status === 200) {
      S.info = r.body;
      if (ENDED[r.body.status]) return result(ended(r.body.status));
      if (r.body.status === 'scanned' || r.body.status === 'pending') return renderConfirm();
      return result('used');
    }
    if (r.status === 404 || r.status === 410 || r.status === 401 || r.status === 403) settle(r);
  }

  // failed reports a transport, rate-limit or server error: inline on the
  // form `where` if given, otherwise on the error screen.
  const problem = (r) =>
    r.status === 0 ? { k: 'netErr' }
      : r.status === 429 ? { k: r.retry === 1 ? 'rateLimited1' : 'rateLimited', n: r.retry || 30 }
        : r.status === 503 ? { k: 'unavailable' } : { k: 'oops' };

  function failed(r, where) {
    const msg = problem(r);
    if (!where) return result('error', msg);
    S.err[where] = msg;
    S.busy = false;
    render();
  }

  // settle maps a refused session request to the screen that explains it.
  async function settle(r, again) {
    switch (r.status) {
      case 401:
        S.user = null;
        return show('signin');
      case 404:
        return result('unknown');
      case 410:
        return result(r.body.error === 'expired' ? 'expired' : 'used');
      case 403:
        return result('elsewhere');
      case 409: {
        if (again) return result('used');
        const g = await api('GET', path());
        // Still "scanned" although our scan was refused: another account has it.
        if (g.status === 200) return result(g.body.status === 'scanned' ? 'elsewhere' : ended(g.body.status) || 'used');
        return settle(g, true);
      }
    }
    return failed(r);
  }

  async function start() {
    show('loading');
    const r = await api('GET', '/api/v1/me');
    if (r.status === 401) return show('signin');
    if (r.status !== 200) return failed(r);
    S.user = r.body;
    if (location.hash === '#devices') return devices(false);
    next();
  }

  function next() {
    if (S.id) scan();
    else show('code');
  }

  // scan opens the request on this phone: the computer sees "scanned by …".
  async function scan() {
    show('loading');
    const r = await api('POST', path('scan'));
    if (r.status !== 200) return settle(r);
    S.info = r.body;
    S.err.confirm = null;
    show('confirm');
  }

  async function act(what) {
    if (S.busy) return;
    S.busy = true;
    S.err.confirm = null;
    render();
    const r = await api('POST', path(what));
    S.busy = false;
    if (r.status === 200 && what === 'cancel') {
      try {
        sessionStorage.setItem(mine(), '1');
      } catch {}
    }
    if (r.status === 200) return result(what === 'confirm' ? 'done' : 'cancelled');
    if (r.status === 0 || r.status === 429 || r.status >= 500) return failed(r, 'confirm');
    settle(r);
  }

  function on(id, ev, fn) {
    $(id).addEventListener(ev, fn);
  }

  on('f-signin', 'submit', async (e) => {
    e.preventDefault();
    if (S.busy) return;
    const username = $('u').value.trim(), password = $('p').value;
    if (!username || !password) {
      S.err.signin = { k: 'fillBoth' };
      return render();
    }
    S.busy = true;
    S.err.signin = null;
    render();
    const r = await api('POST', '/api/v1/auth/cookie', { username, password, ...(await about()) });
    S.busy = false;
    if (r.status === 200) {
      $('p').value = '';
      S.note = '';
      S.user = r.body.user || { username };
      return next();
    }
    if (r.status === 401 || r.status === 400) {
      $('p').value = '';
      S.err.signin = { k: 'wrongCreds' };
      render();
      return $('p').focus();
    }
    failed(r, 'signin');
  });

  on('f-code', 'submit', async (e) => {
    e.preventDefault();
    if (S.busy) return;
    const code = $('c').value.toUpperCase().replace(/[\s-]/g, '');
    if (!/^[A-Z]{8}$/.test(code)) {
      S.err.code = { k: 'badCode' };
      return render();
    }
    S.busy = true;
    S.err.code = null;
    render();
    const r = await api('GET', '/api/v1/login-sessions/by-code/' + code);
    S.busy = false;
    if (r.status === 200 && r.body.id) {
      S.id = r.body.id;
      history.replaceState(null, '', '/m/' + encodeURIComponent(S.id));
      return scan();
    }
    if (r.status === 404) {
      S.err.code = { k: 'noCode' };
      return render();
    }
    if (r.status === 401 || r.status === 410) return settle(r);
    failed(r, 'code');
  });

  // about describes this phone for the list of signed-in devices: the
  // model and system where the browser tells them, and the browser.
  async function about() {
    const ua = navigator.userAgent, ud = navigator.userAgentData;
    let hi = {};
    try {
      hi = await Promise.race([ud.getHighEntropyValues(['model', 'platformVersion']), new Promise((ok) => setTimeout(ok, 300, {}))]);
    } catch {}
    const brands = ((ud && ud.brands) || []).map((b) => b.brand).filter((b) => !/not.?a.?brand/i.test(b));
    const ios = /(iPhone|iPad).*? OS (\d+)/.exec(ua);
    const platform = ios ? 'iOS ' + ios[2]
      : ud && ud.platform ? ud.platform + (ud.platform === 'Android' && hi.platformVersion ? ' ' + parseInt(hi.platformVersion, 10) : '')
        : navigator.platform;
    const app = brands.find((b) => b !== 'Chromium') || brands[0] ||
      [['Edg', 'Edge'], ['SamsungBrowser', 'Samsung Internet'], ['Firefox', 'Firefox'], ['FxiOS', 'Firefox'], ['CriOS', 'Chrome'], ['Chrome', 'Chrome'], ['Safari', 'Safari']]
        .find(([k]) => ua.includes(k + '/'))?.[1];
    return { device_name: (hi.model || (ios && ios[1]) || '').slice(0, 64), platform: (platform || '').slice(0, 64), app_name: app || 'Browser' };
  }

  on('b-confirm', 'click', () => act('confirm'));
  on('b-cancel', 'click', () => act('cancel'));

  on('r-action', 'click', () => {
    if (S.result !== 'unknown') return start();
    S.id = '';
    history.replaceState(null, '', '/m');
    S.err.code = null;
    S.user ? show('code') : start();
  });

  on('signout', 'click', async () => {
    if (S.busy) return;
    S.busy = true;
    render();
    const r = await api('DELETE', '/api/v1/auth/cookie');
    if (r.status >= 300 && r.status !== 401) return failed(r);
    S.user = null;
    S.info = null;
    show('signin');
  });

  on('r-devices', 'click', () => devices(true));
  on('to-devices', 'click', () => devices(true));
  on('b-reload', 'click', () => loadDevices());
  on('b-all', 'click', () => ask(null));
  on('b-back', 'click', () => (S.pushed ? history.back() : (history.replaceState(null, '', location.pathname), back())));
  window.addEventListener('popstate', () => {
    if (S.screen === 'devices' && location.hash !== '#devices') back();
  });
  on('dlg-ok', 'click', signOutDevice);
  on('dlg-cancel', 'click', () => $('dlg').close());
  // Escape closes the dialog, except while its request is on the way.
  on('dlg', 'cancel', (e) => S.busy && e.preventDefault());

  on('lang', 'click', () => {
    S.lang = S.lang === 'en' ? 'zh-CN' : 'en';
    try {
      localStorage.setItem('qrlogin-lang', S.lang);
    } catch {}
    render();
  });

  let saved = null;
  try {
    saved = localStorage.getItem('qrlogin-lang');
  } catch {}
  S.lang = T[saved] ? saved : T[document.documentElement.lang] ? document.documentElement.lang : 'en';

  // /m/<id> opens a request; /m asks for a code. Ids are URL-safe tokens.
  const m = /^\/m(?:\/([^/]*))?\/?$/.exec(location.pathname);
  let id = (m && m[1]) || '';
  try {
    id = decodeURIComponent(id);
  } catch {
    id = '\0';
  }
  S.id = id;
  setInterval(tick, 1000);
  setInterval(poll, 3000);
  if (id && !/^[\w-]{1,128}$/.test(id)) return result('unknown');
  start();
})();
