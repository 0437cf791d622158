// Lemonvox web player: plays one message over WHEP (WebRTC-HTTP egress).
// The page's state is exposed as window.lemonvoxPlayer for tests.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const state = {
    phase: 'idle', // idle, connecting, playing, ended, error
    error: '',
    packetsReceived: 0,
    bytesReceived: 0,
    codec: '',
    durationSeconds: 0, // announced by the server
    startSeconds: 0, // where playback starts (resumed position)
    playedSeconds: 0, // packets received x 20 ms
    firstPacketAt: 0,
    lastPacketAt: 0,
    result: null, // set once when playback is over
  };
  window.lemonvoxPlayer = state;
  let pc = null;
  let resource = null;
  let poll = null;

  function status(text) {
    $('status').textContent = text;
  }

  // grantOf accepts a bare grant, a CHANNEL URL (rtsp/rtsps) or a WHEP URL
  // and returns the grant: the last path segment.
  function grantOf(input) {
    const s = input.trim();
    if (!s.includes('/')) return s;
    try {
      const u = new URL(s);
      const parts = u.pathname.split('/').filter((p) => p !== '');
      return decodeURIComponent(parts[parts.length - 1] || '');
    } catch (e) {
      return '';
    }
  }

  function finish(phase, error) {
    if (state.result) return;
    state.phase = phase;
    state.error = error || '';
    clearInterval(poll);
    state.result = {
      phase: state.phase, error: state.error, codec: state.codec,
      packetsReceived: state.packetsReceived, bytesReceived: state.bytesReceived,
      playedSeconds: state.playedSeconds, durationSeconds: state.durationSeconds, startSeconds: state.startSeconds,
      wallSeconds: state.lastPacketAt > state.firstPacketAt ? (state.lastPacketAt - state.firstPacketAt) / 1000 : 0,
    };
    status(phase === 'ended'
      ? 'Played ' + state.playedSeconds.toFixed(2) + ' s (' + state.packetsReceived + ' packets, ' + state.codec + ').'
      : 'Error: ' + state.error);
    $('play').disabled = false;
    $('stop').disabled = true;
  }

  async function stop(phase, error) {
    const r = resource;
    resource = null;
    if (pc) {
      pc.close();
      pc = null;
    }
    finish(phase, error);
    if (r) {
      try {
        await fetch(r, { method: 'DELETE' });
      } catch (e) { /* the session expires by itself */ }
    }
  }

  async function sample() {
    if (!pc) return;
    const stats = await pc.getStats();
    stats.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'audio') {
        if (s.packetsReceived > state.packetsReceived) {
          const now = Date.now();
          if (!state.firstPacketAt) state.firstPacketAt = now;
          state.lastPacketAt = now;
          if (state.phase === 'connecting') {
            state.phase = 'playing';
          }
        }
        state.packetsReceived = s.packetsReceived || 0;
        state.bytesReceived = s.bytesReceived || 0;
        state.playedSeconds = state.packetsReceived * 0.02;
        const c = s.codecId && stats.get(s.codecId);
        if (c) state.codec = c.mimeType.replace('audio/', '');
      }
    });
    const at = state.startSeconds + state.playedSeconds;
    $('time').textContent = at.toFixed(1) + ' / ' + state.durationSeconds.toFixed(1) + ' s';
    $('progress').value = state.durationSeconds ? Math.min(1, at / state.durationSeconds) : 0;
    if (state.phase === 'playing') status('Playing (' + state.codec + ')…');
    // The server closes the session after the last packet; a quiet second
    // after the announced duration also means the end.
    const quiet = state.lastPacketAt && Date.now() - state.lastPacketAt > 1500;
    if (state.phase === 'playing' && quiet && at >= state.durationSeconds - 0.2) {
      await stop('ended');
    }
  }

  async function play(grant) {
    if (pc) await stop('ended');
    Object.assign(state, { phase: 'connecting', error: '', packetsReceived: 0, bytesReceived: 0, codec: '',
      durationSeconds: 0, startSeconds: 0, playedSeconds: 0, firstPacketAt: 0, lastPacketAt: 0, result: null });
    if (!grant) {
      finish('error', 'no grant given');
      return;
    }
    $('play').disabled = true;
    $('stop').disabled = false;
    status('Connecting…');
    pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    pc.ontrack = (ev) => {
      $('audio').srcObject = ev.streams[0] || new MediaStream([ev.track]);
    };
    pc.onconnectionstatechange = () => {
      if (!pc) return;
      const s = pc.connectionState;
      if (s === 'failed' || s === 'closed' || (s === 'disconnected' && state.packetsReceived > 0)) {
        stop(state.packetsReceived > 0 ? 'ended' : 'error', state.packetsReceived > 0 ? '' : 'connection ' + s);
      }
    };
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    // No trickle ICE: wait for every candidate before sending the offer.
    await new Promise((resolve) => {
      if (pc.iceGatheringState === 'complete') return resolve();
      const t = setTimeout(resolve, 3000);
      pc.addEventListener('icegatheringstatechange', () => {
        if (pc && pc.iceGatheringState === 'complete') {
          clearTimeout(t);
          resolve();
        }
      });
    });
    if (!pc) return;
    const endpoint = new URL('/whep/' + encodeURIComponent(grant), location.href);
    let resp;
    try {
      resp = await fetch(endpoint, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
    } catch (e) {
      await stop('error', 'WHEP request failed: ' + e);
      return;
    }
    if (resp.status !== 201) {
      let detail = resp.status + ' ' + resp.statusText;
      try {
        const p = await resp.json();
        if (p.detail) detail += ': ' + p.detail;
      } catch (e) { /* not a problem body */ }
      await stop('error', detail);
      return;
    }
    resource = new URL(resp.headers.get('Location'), endpoint).href;
    state.durationSeconds = parseFloat(resp.headers.get('Lemonvox-Media-Duration') || '0');
    state.startSeconds = parseFloat(resp.headers.get('Lemonvox-Media-Start') || '0');
    await pc.setRemoteDescription({ type: 'answer', sdp: await resp.text() });
    poll = setInterval(sample, 200);
  }

  async function issueAndPlay() {
    const user = $('user').value.trim();
    const body = { mailbox: $('mailbox').value.trim() || 'INBOX', uid: parseInt($('uid').value, 10) };
    if ($('section').value.trim()) body.section = $('section').value.trim();
    if ($('resume').checked) body.resume = true;
    let resp;
    try {
      resp = await fetch('/api/v1/accounts/' + encodeURIComponent(user) + '/grants', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + $('token').value },
        body: JSON.stringify(body),
      });
    } catch (e) {
      finish('error', 'grant request failed: ' + e);
      return;
    }
    const j = await resp.json().catch(() => ({}));
    if (resp.status !== 201 && resp.status !== 200) {
      finish('error', 'grant refused: ' + resp.status + (j.detail ? ': ' + j.detail : ''));
      return;
    }
    $('grant').value = j.grant;
    await play(j.grant);
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('play-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      play(grantOf($('grant').value)).catch((e) => stop('error', String(e)));
    });
    $('stop').addEventListener('click', () => stop('ended'));
    $('admin-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      issueAndPlay().catch((e) => stop('error', String(e)));
    });
    // #grant=<grant> fills the field (a fragment never reaches a server log).
    const m = /(?:^#|&)grant=([^&]+)/.exec(location.hash);
    if (m) $('grant').value = decodeURIComponent(m[1]);
  });
})();
