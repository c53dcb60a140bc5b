import { printConfig } from './package-run.js';

interface Printed {
  custom: { alarms: { email: string } };
  resources: {
    Resources: { AlarmEmailSubscription: { Condition: string; Properties: { Endpoint: string } } };
    Conditions: { HasAlarmEmail: unknown };
  };
}

describe('the alarm e-mail subscription (FANOUT_ALARM_EMAIL)', () => {
  it('subscribes the address given, and only then', async () => {
    const { code, out } = await printConfig({ FANOUT_ALARM_EMAIL: 'oncall@example.com' });
    expect([code, out.slice(0, 200)]).toEqual([0, expect.any(String)]);
    const config = JSON.parse(out) as Printed;
    expect(config.custom.alarms.email).toBe('oncall@example.com');
    const subscription = config.resources.Resources.AlarmEmailSubscription;
    expect(subscription).toMatchObject({
      Condition: 'HasAlarmEmail',
      Properties: { Endpoint: 'oncall@example.com' },
    });
    expect(config.resources.Conditions.HasAlarmEmail).toEqual({
      'Fn::Not': [{ 'Fn::Equals': ['oncall@example.com', ''] }],
    });
  }, 60_000);
});
