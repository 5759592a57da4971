/**
 * The OpenAPI document served at /docs/openapi.json is valid and useful to client generators:
 * it passes @apidevtools/swagger-parser's validation and Redocly's recommended rules, every
 * operation has an operationId, tags and security (credentials as security schemes, not header
 * parameters), there is a server, and the state object and the error body are shared component
 * schemas that the operations reference.
 */
import SwaggerParser from '@apidevtools/swagger-parser';
import { createConfig, lintFromString } from '@redocly/openapi-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createQr } from '../harness/cluster.js';
import { STORE_MODES, startInProcess, testConfig, type InProcessServer } from '../harness/in-process.js';

interface Operation {
  operationId?: string;
  tags?: string[];
  security?: Array<Record<string, string[]>>;
  parameters?: Array<{ in: string; name: string }>;
  responses: Record<string, { content?: Record<string, { schema: { $ref?: string; allOf?: Array<{ $ref?: string }> } }> }>;
}
interface Document {
  openapi: string;
  servers?: Array<{ url: string }>;
  tags?: Array<{ name: string }>;
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, unknown>; securitySchemes: Record<string, unknown> };
}

/** The operations of the document, named `METHOD path`. */
function operations(doc: Document): Array<[string, Operation]> {
  return Object.entries(doc.paths).flatMap(([path, item]) => Object.entries(item).map(([method, op]): [string, Operation] => [`${method.toUpperCase()} ${path}`, op]));
}

async function fetchDocument(base: string): Promise<{ text: string; doc: Document }> {
  const res = await fetch(`${base}/docs/openapi.json`);
  expect(res.status).toBe(200);
  const text = await res.text();
  return { text, doc: JSON.parse(text) as Document };
}

describe('the OpenAPI document', () => {
  let server: InProcessServer;
  let text: string;
  let doc: Document;

  beforeAll(async () => {
    server = await startInProcess(testConfig(STORE_MODES[0], { url: '' }, 'openapi'));
    ({ text, doc } = await fetchDocument(server.base));
  });
  afterAll(() => server?.close());

  it('is valid OpenAPI 3.0.3 for swagger-parser', async () => {
    expect(doc.openapi).toBe('3.0.3');
    await expect(SwaggerParser.validate(JSON.parse(text))).resolves.toBeTruthy();
  });

  it('has no errors under Redocly’s recommended rules, and warnings only where there is no client error to describe', async () => {
    const config = await createConfig({ extends: ['recommended'] });
    const problems = await lintFromString({ source: text, absoluteRef: 'openapi.json', config });
    const described = problems.map((p) => `${p.severity} ${p.ruleId} ${p.location[0]?.pointer ?? ''}: ${p.message}`);
    expect(described.filter((p) => p.startsWith('error'))).toEqual([]);
    // The operator endpoints answer no 4xx (they take no input): Redocly's "at least one 4XX" is a warning there.
    expect(problems.filter((p) => p.severity !== 'error').map((p) => `${p.ruleId} ${p.location[0]?.pointer}`).sort()).toEqual(
      ['/healthz', '/metrics', '/readyz'].map((path) => `operation-4xx-response #/paths/~1${path.slice(1)}/get/responses`),
    );
  });

  it('gives every operation a unique operationId, declared tags and its security', () => {
    const declaredTags = new Set(doc.tags?.map((t) => t.name));
    const ids = operations(doc).map(([, op]) => op.operationId);
    expect(ids.filter((id) => !id)).toEqual([]);
    expect(new Set(ids).size).toBe(ids.length);
    for (const [name, op] of operations(doc)) {
      expect(op.tags?.length, name).toBeGreaterThan(0);
      for (const tag of op.tags ?? []) expect(declaredTags, `${name}: tag ${tag}`).toContain(tag);
      expect(Array.isArray(op.security), `${name}: security`).toBe(true);
    }
  });

  it('expresses credentials as security schemes, never as header parameters', () => {
    const security = Object.fromEntries(operations(doc).map(([name, op]) => [name, op.security]));
    expect(security['GET /v1/flows/{topic}']).toEqual([{ watchToken: [] }, { bearer: [] }]);
    expect(security['POST /v1/flows/{topic}/session']).toEqual([{ watchToken: [] }]);
    expect(security['DELETE /v1/qr/{id}']).toEqual([{ watchToken: [] }]);
    for (const name of ['POST /v1/qr/{id}/scan', 'POST /v1/qr/{id}/confirm', 'POST /v1/qr/{id}/cancel', 'GET /v1/me']) expect(security[name], name).toEqual([{ bearer: [] }]);
    for (const name of ['POST /v1/qr', 'POST /v1/sessions', 'POST /v1/users', 'POST /v1/verification-codes']) expect(security[name], name).toEqual([]);
    expect(doc.components.securitySchemes).toMatchObject({
      bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
      watchToken: { type: 'apiKey', in: 'header', name: 'Watch-Token' },
    });
    const headerParams = operations(doc).flatMap(([name, op]) => (op.parameters ?? []).filter((p) => p.in === 'header').map((p) => `${name}: ${p.name}`));
    expect(headerParams).toEqual(['POST /v1/sessions: prefer']);
  });

  it('names a server: the origin it was fetched from', () => {
    expect(doc.servers).toEqual([expect.objectContaining({ url: '/' })]);
  });

  it('shares the state object and the error body as component schemas that the operations reference', () => {
    expect(Object.keys(doc.components.schemas)).toEqual(expect.arrayContaining(['FlowState', 'ErrorBody', 'Session', 'User']));
    const schemaOf = (name: string, status: string) => {
      const op = operations(doc).find(([n]) => n === name)?.[1];
      return op?.responses[status]?.content?.['application/json']?.schema;
    };
    expect(schemaOf('GET /v1/flows/{topic}', '200')).toEqual({ $ref: '#/components/schemas/FlowState' });
    expect(schemaOf('POST /v1/qr', '201')?.allOf?.[0]).toEqual({ $ref: '#/components/schemas/FlowState' });
    expect(schemaOf('POST /v1/flows/{topic}/session', '200')).toEqual({ $ref: '#/components/schemas/Session' });
    const errorSchemas = operations(doc).flatMap(([name, op]) =>
      Object.entries(op.responses)
        .filter(([status]) => Number(status) >= 400)
        .map(([status, response]) => [`${name} ${status}`, response.content?.['application/json']?.schema]),
    );
    expect(errorSchemas.length).toBeGreaterThan(30);
    for (const [name, schema] of errorSchemas) expect(schema, String(name)).toEqual({ $ref: '#/components/schemas/ErrorBody' });
  });

  it('uses no JSON-Schema `examples` arrays, which OpenAPI 3.0.3 does not allow in a schema', () => {
    expect(text).not.toMatch(/"examples"\s*:\s*\[/);
  });
});

describe('answers serialized through the shared schemas', () => {
  let server: InProcessServer;
  beforeAll(async () => {
    server = await startInProcess(testConfig(STORE_MODES[0], { url: '' }, 'openapi'));
  });
  afterAll(() => server?.close());

  it('a 409 carries the whole current state object, as the state read does', async () => {
    const qr = await createQr(server.base);
    const cancel = () => fetch(`${server.base}/v1/qr/${qr.id}`, { method: 'DELETE', headers: { 'watch-token': qr.watchToken } });
    expect((await cancel()).status).toBe(200);
    const again = await cancel();
    expect(again.status).toBe(409);
    const body = (await again.json()) as { error: { code: string }; state: Record<string, unknown> };
    const read = await fetch(`${server.base}/v1/flows/${qr.topic}`, { headers: { 'watch-token': qr.watchToken } });
    expect(body.error.code).toBe('invalid_transition');
    expect(body.state).toEqual(await read.json());
    expect(body.state).toMatchObject({ topic: qr.topic, kind: 'qr', id: qr.id, state: 'cancelled', version: 2 });
  });
});

describe('the OpenAPI document behind PUBLIC_URL', () => {
  it('names PUBLIC_URL as its server', async () => {
    const server = await startInProcess(testConfig(STORE_MODES[0], { url: '' }, 'openapi', { PUBLIC_URL: 'https://login.example.com/' }));
    try {
      const { doc } = await fetchDocument(server.base);
      expect(doc.servers).toEqual([expect.objectContaining({ url: 'https://login.example.com' })]);
    } finally {
      await server.close();
    }
  });
});
