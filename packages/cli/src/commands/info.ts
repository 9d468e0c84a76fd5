import { qemuJson } from '../qemu-json.js';
import type { BlockDevice } from '@q/raw';
import { LOCK_USERS } from '@q/vkd';
import { getopt, hasFlag, lastValue } from '../getopt.js';
import { imageInfo, layerPath, type ImageInfoJson } from '../image-info.js';
import { formatInfoHuman } from '../image-info-human.js';
import { openImageOrExit } from '../open-source.js';
import { ExitError, UsageError } from '../usage-error.js';
import { writeOut } from '../process-output.js';

/** `qcow info`: qemu-img info, same keys, same human layout. Backing files are only opened for --backing-chain. */
export async function infoCommand(args: string[]): Promise<number> {
  const parsed = getopt(args, { short: 'f:hU', long: { output: true, 'backing-chain': false, 'force-share': false, 'image-opts': false, untrusted: false } });
  const output = lastValue(parsed, 'output') ?? 'human';
  if (output !== 'human' && output !== 'json') throw new ExitError('--output must be used with human or json as argument.', 1);
  const [file, ...extra] = parsed.operands;
  if (file === undefined || extra.length > 0) throw new UsageError(`Expecting one image file name`);
  const chain = hasFlag(parsed, 'backing-chain');
  const device = await openImageOrExit(file, { format: lastValue(parsed, 'f'), ignoreBacking: !chain, forceShare: hasFlag(parsed, 'U', 'force-share'), lockUser: LOCK_USERS.metadataOnly, blockingIo: true, untrusted: hasFlag(parsed, 'untrusted') });
  try {
    const infos: ImageInfoJson[] = [];
    let layer: BlockDevice | undefined = device;
    let name = file;
    while (layer !== undefined) {
      infos.push(await imageInfo(layer, name));
      if (!chain) break;
      layer = layer.backing;
      if (layer !== undefined) name = layerPath(layer);
    }
    if (output === 'json') {
      writeOut(qemuJson(chain ? infos : infos[0]) + '\n');
    } else {
      writeOut(infos.map(formatInfoHuman).join('\n'));
    }
  } finally {
    await device.close();
  }
  return 0;
}
