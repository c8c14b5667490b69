export declare class Switchboard {}
