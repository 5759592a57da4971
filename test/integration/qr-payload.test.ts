/** QR_PAYLOAD_URL: what the QR code encodes (a deep or universal link), refused at start without `{id}`. */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../server/src/config.js';
import { qrPayload } from '../../server/src/qr/qr-service.js';
import { http } from '../harness/clients.js';
import { STORE_MODES, startInProcess, testConfig, useRedisServer } from '../harness/in-process.js';

const redis = useRedisServer();

describe('QR_PAYLOAD_URL', () => {
  it('is refused at start without {id}, or when it is no URL, naming the variable', () => {
    for (const bad of ['acme://login/', 'https://app.example.com/qr', 'not a url {id}', 'javascript:alert({id})']) {
      expect(() => loadConfig({ QR_PAYLOAD_URL: bad })).toThrow(ConfigError);
      expect(() => loadConfig({ QR_PAYLOAD_URL: bad })).toThrow(/^QR_PAYLOAD_URL: /);
    }
  });

  it('fills {id} (every occurrence) and keeps the demo page link when unset', () => {
    expect(qrPayload('http://h', 'abc', 'acme://login/{id}?again={id}')).toBe('acme://login/abc?again=abc');
    expect(qrPayload('http://h', 'abc', null)).toBe('http://h/app#qr=abc');
  });

  it.each(STORE_MODES)('POST /v1/qr answers the app link, and the SVG encodes it ($name)', async (mode) => {
    const app = await startInProcess(testConfig(mode, redis, 'qr-payload', { QR_PAYLOAD_URL: 'https://app.example.com/qr/{id}' }));
    try {
      const created = await http(app.base, 'POST', '/v1/qr');
      expect(created.status).toBe(201);
      expect(created.body.qrPayload).toBe(`https://app.example.com/qr/${created.body.id}`);
      const svg = await fetch(`${app.base}/v1/qr/${created.body.id}/image.svg`);
      expect(svg.status).toBe(200);
      // The same payload without the template is a different code: the SVG depends on the template.
      const plain = await (await import('qrcode')).default.toString(`${app.base}/app#qr=${created.body.id}`, { type: 'svg', margin: 2, errorCorrectionLevel: 'M' });
      const templated = await (await import('qrcode')).default.toString(created.body.qrPayload, { type: 'svg', margin: 2, errorCorrectionLevel: 'M' });
      const body = await svg.text();
      expect(body).toBe(templated);
      expect(body).not.toBe(plain);
    } finally {
      await app.close();
    }
  });
});
