import { App, Validations, type AppProps } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { RelayStack } from './relay-stack.js';
import { readSettings, stackNameFor, type StackSettings } from './settings.js';

export interface RelayApp {
  app: App;
  stack: RelayStack;
  settings: StackSettings;
}

/**
 * The CDK app: one stack for the stage named in the context, checked by cdk-nag's AWS Solutions rules
 * during synthesis (a finding fails `cdk synth` and is written to the assembly's validation report).
 */
export function createApp(props: AppProps = {}): RelayApp {
  const app = new App(props);
  const settings = readSettings(app);
  const stack = new RelayStack(app, stackNameFor(settings.stage), {
    settings,
    description: `relay-ws real-time messaging backend (${settings.stage})`,
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { app, stack, settings };
}
