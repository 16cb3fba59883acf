// workerd's node:dns under nodejs_compat, the slice the webhook resolver calls: @types/node stays out of this program.
declare module "node:dns/promises" {
  export function lookup(
    hostname: string,
    options: { all: true; verbatim?: boolean },
  ): Promise<Array<{ address: string; family: number }>>;
}
