import type { CreatedFlow, FlowState, Requester } from '@handoff/protocol';
import QRCode from 'qrcode';
import type { FlowService } from '../flows/flow-service.js';
import { principalKey, type Principal } from '../identity/principal.js';

/** What `POST /v1/qr` answers. */
export interface CreatedQr extends CreatedFlow {
  qrPayload: string;
  imageUrl: string;
}

/**
 * QR login: the browser creates, the logged-in app scans, confirms or cancels, the browser may
 * cancel too. Every step is one compare-and-set transition in the FlowService.
 */
export class QrService {
  constructor(
    private readonly flows: FlowService,
    private readonly ttlMs: number,
    /** QR_PAYLOAD_URL: a template with `{id}`; null: the demo phone page of this server. */
    private readonly payloadTemplate: string | null = null,
  ) {}

  /**
   * Create a QR flow for the requesting browser. `baseUrl` is the server's public URL; `context`
   * (the server API's, default none) is kept on the flow and shown to the phone when it scans.
   */
  async create(requester: Requester, baseUrl: string, context?: Record<string, unknown>): Promise<CreatedQr> {
    const { record, watchToken } = await this.flows.create('qr', this.ttlMs, context === undefined ? { requester } : { requester, context });
    const state = await this.flows.stateOf(record);
    return { ...state, watchToken, qrPayload: qrPayload(baseUrl, record.id, this.payloadTemplate), imageUrl: `${baseUrl}/v1/qr/${record.id}/image.svg` };
  }

  /** The QR code image for an existing flow, as SVG. */
  async svg(id: string, baseUrl: string): Promise<string> {
    const parsed = this.flows.parseTopic(`qr:${id}`);
    await this.flows.load('qr', parsed.id);
    return QRCode.toString(qrPayload(baseUrl, parsed.id, this.payloadTemplate), { type: 'svg', margin: 2, errorCorrectionLevel: 'M' });
  }

  /**
   * The app scans: pending → scanned; the browser learns who, the phone learns who is asking (and
   * the flow's `context`, if it has one). The flow is bound to `principalKey(principal)`.
   */
  async scan(id: string, principal: Principal): Promise<{ state: FlowState; requester: Requester; context?: Record<string, unknown> }> {
    const { id: flowId } = this.flows.parseTopic(`qr:${id}`);
    const record = await this.flows.transition('qr', flowId, 'scanned', {
      patch: {
        userId: principalKey(principal),
        scannedBy: { userId: principal.id, displayName: principal.displayName, avatarUrl: principal.avatarUrl },
      },
    });
    const scanned = { state: await this.flows.stateOf(record), requester: record.requester ?? unknownRequester(record.createdAt) };
    return record.context === undefined ? scanned : { ...scanned, context: record.context };
  }

  /** The scanner confirms: scanned → confirmed (403 not_scanner for anyone else). */
  async confirm(id: string, principal: Principal): Promise<FlowState> {
    const { id: flowId } = this.flows.parseTopic(`qr:${id}`);
    return this.flows.stateOf(await this.flows.transition('qr', flowId, 'confirmed', { requireUserId: principalKey(principal) }));
  }

  /** The scanner declines: scanned → cancelled. */
  async cancelByApp(id: string, principal: Principal): Promise<FlowState> {
    const { id: flowId } = this.flows.parseTopic(`qr:${id}`);
    return this.flows.stateOf(
      await this.flows.transition('qr', flowId, 'cancelled', { from: ['scanned'], requireUserId: principalKey(principal) }),
    );
  }

  /** The browser gives up: pending/scanned → cancelled, for the watch-token holder. */
  async cancelByBrowser(id: string, watchToken: string | undefined): Promise<FlowState> {
    const { id: flowId } = this.flows.parseTopic(`qr:${id}`);
    const record = await this.flows.load('qr', flowId);
    this.flows.authorize(record, { watchToken: watchToken ?? '' });
    return this.flows.stateOf(await this.flows.transition('qr', flowId, 'cancelled'));
  }

  /** The app's backend cancels (server API, authenticated by its key): pending/scanned → cancelled, no watch token. */
  async cancelByServer(id: string): Promise<FlowState> {
    const { id: flowId } = this.flows.parseTopic(`qr:${id}`);
    return this.flows.stateOf(await this.flows.transition('qr', flowId, 'cancelled'));
  }
}

/** What the QR code encodes: QR_PAYLOAD_URL with the flow id (a deep or universal link), else the /app demo page. */
export function qrPayload(baseUrl: string, id: string, template: string | null = null): string {
  return template ? template.replaceAll('{id}', encodeURIComponent(id)) : `${baseUrl}/app#qr=${id}`;
}

function unknownRequester(createdAt: number): Requester {
  return { ip: 'unknown', userAgent: 'unknown', createdAt: new Date(createdAt).toISOString() };
}
