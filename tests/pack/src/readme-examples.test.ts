import { describe, expect, it } from 'vitest';
import { typeCheckExamples, typescriptExamples } from './readme-examples.js';
import { publishablePackages } from './workspace-packages.js';

const readmes = publishablePackages().map(({ directory }) => `${directory}/README.md`);

describe('README examples', () => {
  it.each(readmes)('%s shows a TypeScript example', (readme) => {
    expect(typescriptExamples(readme).length).toBeGreaterThan(0);
  });

  it('compile against the built packages, each on its own', async () => {
    const examples = readmes.flatMap((readme) => typescriptExamples(readme));
    expect(await typeCheckExamples(examples)).toEqual([]);
  });
});
