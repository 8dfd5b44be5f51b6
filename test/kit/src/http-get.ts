/** A plain HTTP GET for the pages a server serves beside its tunnels (metrics, the debug page, an app route). */
import { request } from 'node:http';

/** HttpPage is a whole response: its status, content type and body as text. */
export interface HttpPage {
  status: number;
  type: string;
  body: string;
}

/** httpGet fetches `url` (on loopback) with `headers` and resolves with the whole response; rejects on a socket error. */
export function httpGet(url: string, headers: Record<string, string> = {}): Promise<HttpPage> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    });
    req.on('error', reject);
    req.end();
  });
}
