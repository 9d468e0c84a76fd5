import type { CompressionType } from '@q/format';
import type { Codec, Codecs } from './codecs.js';

let portable: Promise<Codecs> | undefined;

/** The portable codecs, imported the first time a compressed cluster is read (most images have none). */
function loadPortable(): Promise<Codecs> {
  portable ??= import('./portable-codecs.js').then((module) => module.portableCodecs());
  return portable;
}

function lazyCodec(type: CompressionType): Codec {
  return {
    async decompress(src, dst) {
      await (await loadPortable())[type]!.decompress(src, dst);
    },
  };
}

/**
 * What the engine decompresses with when the caller passes no codecs: the pure-JS ones (fflate, fzstd), which run
 * anywhere, so an image with compressed clusters opens without any setup. Node callers get the faster native
 * ones from `@q/qcow2/node` (`nodeCodecs`), which the driver and the CLI pass.
 */
export const DEFAULT_CODECS: Codecs = { zlib: lazyCodec('zlib'), zstd: lazyCodec('zstd') };
