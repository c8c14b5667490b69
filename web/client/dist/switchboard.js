export class Switchboard {}
