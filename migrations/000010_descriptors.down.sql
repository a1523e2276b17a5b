DROP TRIGGER games_descriptor_changed ON games;
DROP FUNCTION game_descriptor_changed();
DROP TABLE game_descriptors;
